package redis

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// KeyPatternRE must be the CRD's expression, in every copy of the CRDs.
func TestKeyPatternREIsTheCRDs(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	files := []string{"config/crd/bases/privacy.dsr.dev_datastores.yaml", "config/crd/bases/privacy.dsr.dev_clusterdatastores.yaml",
		"charts/dsr-operator/crds/privacy.dsr.dev_datastores.yaml", "charts/dsr-operator/crds/privacy.dsr.dev_clusterdatastores.yaml"}
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, line := range strings.Split(string(raw), "\n") {
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "pattern: ")
			// The s3 object key (ObjectMapping.Key, with \x00) has placeholders too.
			if !ok || !strings.Contains(v, `\{[A-Za-z]`) || strings.Contains(v, `\x00`) {
				continue
			}
			found++
			if v != KeyPatternRE {
				t.Errorf("%s: the CRD's key pattern is\n%s\nthe connector's\n%s", f, v, KeyPatternRE)
			}
		}
		if found != 1 {
			t.Errorf("%s: %d key patterns found, want 1", f, found)
		}
	}
}

func TestParsePattern(t *testing.T) {
	for src, want := range map[string]string{
		"session:{userId}:*": "L(session:) P(userId) L(:) *",
		"cart:{userId}":      "L(cart:) P(userId)",
		"{a}{b.c}-{d_e-f}x*": "P(a) P(b.c) L(-) P(d_e-f) L(x) *",
		"{userId}":           "P(userId)",
	} {
		p, err := parsePattern(src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		var got []string
		for _, pt := range p.parts {
			if pt.Placeholder != "" {
				got = append(got, "P("+pt.Placeholder+")")
			} else {
				got = append(got, "L("+pt.Literal+")")
			}
		}
		if p.glob {
			got = append(got, "*")
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%q: %s, want %s", src, strings.Join(got, " "), want)
		}
	}
}

func TestExpand(t *testing.T) {
	p, _ := parsePattern("s:{a}/{b}:*")
	for _, c := range []struct {
		ids  connector.Identifiers
		want string
		ok   bool
		err  bool
	}{
		{connector.Identifiers{"a": "x*", "b": "[y]"}, `s:x\*/\[y\]:*`, true, false},
		{connector.Identifiers{"a": "x"}, "", false, false},
		{connector.Identifiers{"a": "x", "b": ""}, "", false, false},
		{connector.Identifiers{"a": "x/y", "b": "z"}, "", false, true},
		{connector.Identifiers{"a": "x", "b": "z:1"}, "", false, true},
		// A subject without b is not refused for a's separator: the pattern just does not apply.
		{connector.Identifiers{"a": "x/y"}, "", false, false},
	} {
		got, ok, err := p.expand(c.ids)
		if got != c.want || ok != c.ok || (err != nil) != c.err {
			t.Errorf("%d identifiers: %q %v %v", len(c.ids), got, ok, err)
		}
		var ae *ambiguousError
		if err != nil && (!errors.As(err, &ae) || strings.Contains(err.Error(), "x/y") || strings.Contains(err.Error(), "z:1")) {
			t.Errorf("error %v", err)
		}
	}
	exact, _ := parsePattern("k:{a}")
	if got, ok, err := exact.expand(connector.Identifiers{"a": "x*:?"}); got != "k:x*:?" || !ok || err != nil {
		t.Errorf("an exact key is the value verbatim: %q %v %v", got, ok, err)
	}
}

func TestNameHolds(t *testing.T) {
	for _, c := range []struct {
		key, v string
		want   bool
	}{
		{"legacy/a@x.org/prefs", "a@x.org", true},
		{"a@x.org", "a@x.org", true},
		{"xa@x.org.uk", "a@x.org", true},
		{"legacy/b@x.org", "a@x.org", false},
		{"k:7", "7", true},
		{"7", "7", true},
		{"7:k", "7", true},
		{"k:17", "7", false},
		{"k:71", "7", false},
		{"k:17:7", "7", true},
		{"k:ab-c", "ab", true},
		{"k:abc", "ab", false},
		{"k:ü7ü", "7", true}, // only ASCII letters and digits join a segment
		{"k:u47", "u47", true},
		{"k:xu47", "u47", false},
	} {
		if got := connector.NameHolds(c.key, c.v); got != c.want {
			t.Errorf("NameHolds(%q, %q) = %v", c.key, c.v, got)
		}
	}
}

// redisError is a server error as go-redis returns it (proto.RedisError is internal).
type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

func TestFail(t *testing.T) {
	ids := connector.Identifiers{"email": "alice@example.org", "userId": "u-1"}
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		kind connector.ErrorKind
		want string
	}{
		{redisError("ERR unknown command 'UNLINK', with args beginning with: 'session:u-1:x' "), connector.KindRejected, "Redis 4.0"},
		{redisError("WRONGPASS invalid username-password pair or user is disabled."), connector.KindAuth, "credentials"},
		{redisError("NOAUTH Authentication required."), connector.KindAuth, "credentials"},
		{redisError("NOPERM this user has no permissions to run the 'unlink' command"), connector.KindAuth, "permission"},
		{redisError("MOVED 3999 127.0.0.1:6381"), connector.KindMapping, "Cluster"},
		{redisError("CLUSTERDOWN Hash slot not served"), connector.KindMapping, "Cluster"},
		{redisError("READONLY You can't write against a read only replica."), connector.KindInvalid, "replica"},
		{redisError("ERR DB index is out of range"), connector.KindInvalid, "database number"},
		{redisError("LOADING Redis is loading the dataset in memory"), connector.KindUnavailable, "LOADING"},
		{redisError("ERR something about alice@example.org and u-1"), connector.KindUnavailable, "[identifier]"},
		{redisError("ERR " + strings.Repeat("x", maxMessage-10) + "alice@example.org"), connector.KindUnavailable, "..."},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), connector.KindUnavailable, "refused"},
	} {
		err := fail(ctx, "erase", c.err, ids)
		var ce *connector.Error
		if !errors.As(err, &ce) || ce.Kind != c.kind || ce.Op != "erase" {
			t.Errorf("%v: %v, want kind %s", c.err, err, c.kind)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) {
			t.Errorf("%q not in %q", c.want, msg)
		}
		for _, leak := range []string{"alice", "u-1", "session:"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%q leaks %q", msg, leak)
			}
		}
		if errors.Is(err, c.err) {
			t.Errorf("%v: unwraps to the unscrubbed error", c.err)
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := fail(done, "verify", errors.New("read tcp: i/o timeout"), ids); !errors.Is(err, context.Canceled) || connector.KindOf(err) != connector.KindUnavailable {
		t.Errorf("a cancelled context: %v", err)
	}
}

// FuzzExpand checks, for any pattern the CRD accepts and any value, that parsing keeps the
// pattern whole and that the expansion matches the key the value forms, in Redis's matcher.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"session:{userId}:*", "cart:{userId}", "{a}{b}x*", "a.{email}.*", "ü{x}ü"} {
		f.Add(s, "v")
		f.Add(s, "*?[]\\^-")
	}
	f.Fuzz(func(t *testing.T, src, v string) {
		p, err := parsePattern(src)
		if (err == nil) != (keyPatternRE.MatchString(src) && len(src) <= maxPatternLength) {
			t.Fatalf("%q: parse %v disagrees with the CRD expression", src, err)
		}
		if err != nil {
			return
		}
		var whole strings.Builder
		for _, pt := range p.parts {
			if pt.Placeholder != "" {
				whole.WriteString("{" + pt.Placeholder + "}")
			} else {
				whole.WriteString(pt.Literal)
			}
		}
		if p.glob {
			whole.WriteString("*")
		}
		if whole.String() != src {
			t.Fatalf("%q parsed as %q", src, whole.String())
		}
		ids := connector.Identifiers{}
		for _, pt := range p.parts {
			if pt.Placeholder != "" {
				ids[pt.Placeholder] = v
			}
		}
		match, ok, err := p.expand(ids)
		if v == "" {
			if ok || err != nil {
				t.Fatalf("empty value expanded: %q %v", match, err)
			}
			return
		}
		if err != nil {
			return // refused for a separator inside v
		}
		key := p.probeKey(v)
		if !p.glob {
			if match != key {
				t.Fatalf("exact key %q, want %q", match, key)
			}
			return
		}
		if !stringMatch(match, key) || !stringMatch(match, key+"tail") {
			t.Fatalf("%q does not match %q", match, key)
		}
	})
}
