package redis

import "testing"

func TestSweepPatternReadsValuesBack(t *testing.T) {
	for _, tc := range []struct {
		pattern, match, key string
		want                map[string]string
	}{
		{"cart:{email}", "cart:*", "cart:customer-1@example.com", map[string]string{"email": "customer-1@example.com"}},
		{"session:{userId}:*", "session:*:*", "session:u-42:abc", map[string]string{"userId": "u-42"}},
		{"u:{id}:p:{phone}", "u:*:p:*", "u:9:p:+15550100001", map[string]string{"id": "9", "phone": "+15550100001"}},
		{"cart:{email}", "cart:*", "other:x", nil},
		{"session:{userId}:*", "session:*:*", "session::abc", nil},
	} {
		p, err := parsePattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		match, ok := p.sweepMatch()
		if !ok || match != tc.match {
			t.Fatalf("%s: sweep match %q, want %q", tc.pattern, match, tc.match)
		}
		got := p.read(tc.key)
		if len(got) != len(tc.want) {
			t.Fatalf("%s on %q: read %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Fatalf("%s on %q: read %v, want %v", tc.pattern, tc.key, got, tc.want)
			}
		}
	}
	p, _ := parsePattern("x:{a}{b}")
	if _, ok := p.sweepMatch(); ok {
		t.Fatalf("adjacent placeholders cannot be read back")
	}
}
