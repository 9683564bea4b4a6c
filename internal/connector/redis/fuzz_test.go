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

// FuzzGlobEscape checks, against a real server, that an expanded pattern matches the subject's key
// and none of its near misses, whatever the identifier holds.
func FuzzGlobEscape(f *testing.F) {
	for _, s := range []string{"a", "*", "?", "[a-z]", "\\", "\\*", "a]b", "^", "[^a]", "x-y", "\x00", "ü", "{userId}", "a b"} {
		f.Add(s)
	}
	srv := teststore.SharedRedis(f)
	opts, err := goredis.ParseURL(srv.URL(14))
	if err != nil {
		f.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
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
		near := []string{"f:" + v + "x:k", "f:x" + v + ":k", "f:" + v + v + ":k", "f:" + v[1:] + ":k", "f:" + v[:len(v)-1] + ":k", "f:a:k", "f::k"}
		for _, k := range append([]string{own}, near...) {
			rdb.Set(ctx, k, "v", 0)
		}
		match, ok, err := p.expandChecked(connector.Identifiers{"userId": v})
		if strings.Contains(v, ":") {
			if err == nil {
				t.Fatalf("%q holds the separator but was expanded", v)
			}
			return
		}
		if !ok || err != nil {
			t.Fatalf("not expanded: %v", err)
		}
		got, err := c.scan(ctx, match, 0)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if len(got) != 1 || got[0] != own {
			t.Fatalf("pattern for %q matched %q", v, got)
		}
	})
}
