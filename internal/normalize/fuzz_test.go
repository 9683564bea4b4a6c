package normalize

import "testing"

var fuzzSeeds = []string{
	"customer-1@example.com", " Customer-1@Example.com ", "anna@bücher.example", "STRASSE@Example.com",
	"a@b@c", "@x", "x@", "+1 (555) 010-0001", "0015550100001", "555-010-0001", "+44 20 7946 0018 ext. 12",
	"", " ", "\xff\xfe", "0", "00", "+", "ǅ@ǅ.example", "Σ@σ.ς", "1234567890123456789012345",
}

// FuzzKey checks the properties every connector relies on: normalising never panics, a key is
// its own key, and two values match exactly when their keys are equal (so a value never matches
// one that normalises differently).
func FuzzKey(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, s)
	}
	f.Add("customer-1@example.com", "Customer-1@Example.com")
	f.Add("+15550100001", "+1 (555) 010-0001")
	regions := []string{"", "US", "GB", "DE"}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, region := range regions {
			n := Normalizer{Region: region}
			for _, kind := range Kinds {
				ka, kb := n.Key(kind, a), n.Key(kind, b)
				if again := n.Key(kind, ka); again != ka {
					t.Fatalf("%s/%s: Key(%q) = %q, but Key(%q) = %q", kind, region, a, ka, ka, again)
				}
				if n.Match(kind, a, b) != (ka == kb) {
					t.Fatalf("%s/%s: Match(%q, %q) disagrees with their keys", kind, region, a, b)
				}
				if kind == Exact && (ka == kb) != (a == b) {
					t.Fatalf("exact: %q and %q", a, b)
				}
			}
		}
	})
}

// FuzzCandidates checks that the search narrowing never drops the value's own normalised form.
func FuzzCandidates(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, ok := (Normalizer{}).Normalize(Email, v)
		if ok {
			cands := EmailCandidates(v, key)
			if len(cands) == 0 || cands[0] != key {
				t.Fatalf("candidates of %q start with %q, want the key %q", v, cands, key)
			}
		}
		pkey, ok := (Normalizer{Region: "US"}).Normalize(Phone, v)
		if ok {
			if _, ok := PhoneDigits(pkey); !ok {
				t.Fatalf("no digits for phone key %q of %q", pkey, v)
			}
		}
	})
}
