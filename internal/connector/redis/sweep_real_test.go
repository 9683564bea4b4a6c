package redis_test

import (
	"context"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
)

// TestSweepFindsListedKeys: a sweep over a real Redis reports the keys of a listed user under
// deleted and retained patterns, and nobody else's.
func TestSweepFindsListedKeys(t *testing.T) {
	e := setup(t, nil, nil)
	ctx := context.Background()
	for _, k := range []string{"session:u1:a", "session:u1:b", "session:u11:a", "cart:u1", "cart:u2",
		"consent:u1", "profile:customer-1@example.com:x", "unrelated:u1"} {
		if err := e.rdb.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	match := func(identifier string, kind normalize.Kind, v string) bool {
		return identifier == "userId" && v == "u1" || kind == normalize.Email && v == "customer-1@example.com"
	}
	var live, retained int
	stats, err := e.client.(connector.Sweeper).Sweep(ctx, connector.SweepOptions{Match: match}, func(h connector.SweepHit) error {
		if h.Retained {
			retained++
		} else {
			live++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// session:u1:a, session:u1:b, cart:u1, profile:...; consent:u1 retained.
	if live != 4 || retained != 1 {
		t.Fatalf("live %d retained %d, want 4 and 1", live, retained)
	}
	if stats.Scanned != 7 {
		t.Fatalf("scanned %d keys, want the 7 the patterns name", stats.Scanned)
	}
}
