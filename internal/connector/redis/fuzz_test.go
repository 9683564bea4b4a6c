package redis

import (
	"context"
	"sort"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

var globSeeds = []string{"a", "*", "?", "[a-z]", "\\", "\\*", "a]b", "^", "[^a]", "x-y", "\x00", "ü", "{userId}", "a b", "[", "]", "[\\]", "a\\", "**", "\xff\x80"}

// FuzzGlobEscape checks, against a real server, that an expanded pattern matches the subject's key
// and none of its near misses, whatever the identifier holds; and that the Go model of Redis's
// matcher (used by FuzzGlobOracle) agrees with the server on every key.
func FuzzGlobEscape(f *testing.F) {
	for _, s := range globSeeds {
		f.Add(s)
	}
	srv := teststore.SharedRedis(f)
	// Database 0: the package's other tests take 1 to 15.
	opts, err := goredis.ParseURL(srv.URL(0))
	if err != nil {
		f.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	p, err := parsePattern("f:{userId}:*")
	if err != nil {
		f.Fatal(err)
	}
	c := &client{rdb: rdb}
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" {
			return
		}
		ctx := context.Background()
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		own := "f:" + v + ":k"
		near := []string{"f:" + v + "x:k", "f:x" + v + ":k", "f:" + v + v + ":k", "f:" + v[1:] + ":k", "f:" + v[:len(v)-1] + ":k",
			"f:a:k", "f::k", "f:" + strings.ToUpper(v) + ":k", "f:" + v + "\\:k", "f:\\" + v + ":k"}
		var all []string
		for _, k := range append([]string{own}, near...) {
			if !containsString(all, k) {
				all = append(all, k)
			}
		}
		for _, k := range all {
			if err := rdb.Set(ctx, k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		match, ok, err := p.expand(connector.Identifiers{"userId": v})
		if strings.Contains(v, ":") {
			if err == nil {
				t.Fatalf("%q holds the separator but was expanded", v)
			}
			return
		}
		if !ok || err != nil {
			t.Fatalf("not expanded: %v", err)
		}
		got, err := c.scanMatch(ctx, match)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != own {
			t.Fatalf("pattern for %q matched %q", v, got)
		}
		var modelled []string
		for _, k := range all {
			if stringMatch(match, k) {
				modelled = append(modelled, k)
			}
		}
		sort.Strings(modelled)
		if strings.Join(modelled, "\x01") != strings.Join(got, "\x01") {
			t.Fatalf("the Go model matched %q, the server %q", modelled, got)
		}
	})
}

// FuzzGlobOracle checks escapeGlob on many more pairs than a server round trip allows: the escaped
// value matches a string exactly when the two are equal, and with a trailing '*' exactly when the
// string starts with the value.
func FuzzGlobOracle(f *testing.F) {
	for _, s := range globSeeds {
		f.Add(s, s)
		f.Add(s, s+"x")
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, v, s string) {
		if v == "" {
			// expand never substitutes an empty value; and Redis's "*" does not match an empty key.
			return
		}
		e := escapeGlob(v)
		if got := stringMatch(e, s); got != (s == v) {
			t.Fatalf("escape(%q) matches %q: %v", v, s, got)
		}
		if got := stringMatch(e+"*", s); got != strings.HasPrefix(s, v) {
			t.Fatalf("escape(%q)* matches %q: %v", v, s, got)
		}
	})
}

// stringMatch is Redis's stringmatchlen (util.c, case-sensitive) in Go, close enough to the C to
// be compared line by line. The C reads one byte past a pattern's end (the sds terminator); here
// that byte is taken as 0.
func stringMatch(pattern, str string) bool {
	skipLonger := false
	return matchImpl([]byte(pattern), []byte(str), &skipLonger)
}

func matchImpl(pattern, str []byte, skipLonger *bool) bool {
	at := func(b []byte, i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	for len(pattern) > 0 && len(str) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 1 && pattern[1] == '*' {
				pattern = pattern[1:]
			}
			if len(pattern) == 1 {
				return true
			}
			for len(str) > 0 {
				if matchImpl(pattern[1:], str, skipLonger) {
					return true
				}
				if *skipLonger {
					return false
				}
				str = str[1:]
			}
			*skipLonger = true
			return false
		case '?':
			str = str[1:]
		case '[':
			pattern = pattern[1:]
			not := at(pattern, 0) == '^'
			if not {
				pattern = pattern[1:]
			}
			match := false
			for {
				if len(pattern) >= 2 && pattern[0] == '\\' {
					pattern = pattern[1:]
					if pattern[0] == str[0] {
						match = true
					}
				} else if len(pattern) > 0 && pattern[0] == ']' {
					break
				} else if len(pattern) == 0 {
					// The C steps back onto the last byte, which the loop's end then consumes.
					pattern = []byte{0}
					break
				} else if len(pattern) >= 3 && pattern[1] == '-' {
					// The C compares plain (signed) chars.
					start, end, c := int(int8(pattern[0])), int(int8(pattern[2])), int(int8(str[0]))
					if start > end {
						start, end = end, start
					}
					pattern = pattern[2:]
					if c >= start && c <= end {
						match = true
					}
				} else if pattern[0] == str[0] {
					match = true
				}
				pattern = pattern[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			str = str[1:]
		case '\\':
			if len(pattern) >= 2 {
				pattern = pattern[1:]
			}
			fallthrough
		default:
			if pattern[0] != str[0] {
				return false
			}
			str = str[1:]
		}
		pattern = pattern[1:]
		if len(str) == 0 {
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			break
		}
	}
	return len(pattern) == 0 && len(str) == 0
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
