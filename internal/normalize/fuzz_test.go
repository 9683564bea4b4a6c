package normalize

import "testing"

var fuzzSeeds = []string{
	"customer-1@example.com", " Customer-1@Example.com ", "anna@bücher.example", "STRASSE@Example.com",
	"a@b@c", "@x", "x@", "+1 (555) 010-0001", "0015550100001", "555-010-0001", "+44 20 7946 0018 ext. 12",
	"", " ", "\xff\xfe", "0", "00", "+", "ǅ@ǅ.example", "Σ@σ.ς", "1234567890123456789012345",
}

// FuzzKey checks the properties every connector relies on: normalising never panics,
// normalising twice gives the same result as once (a key is its own key, and a normalised form
// normalises to itself), and matching is an equivalence that keys decide: two values that
// normalise equal always match each other, and never match a value that normalises differently.
func FuzzKey(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, s, s)
	}
	f.Add("customer-1@example.com", "Customer-1@Example.com", "customer-11@example.com")
	f.Add("anna@bücher.example", "ANNA@XN--BCHER-KVA.EXAMPLE", "anna@bucher.example")
	f.Add("+15550100001", "+1 (555) 010-0001", "+445550100001")
	f.Add("0015550100001", "555 010 0001", "+1 555 010 0001 ext. 7")
	regions := []string{"", "US", "GB", "DE"}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, region := range regions {
			n := Normalizer{Region: region}
			for _, kind := range Kinds {
				ka, kb, kc := n.Key(kind, a), n.Key(kind, b), n.Key(kind, c)
				if again := n.Key(kind, ka); again != ka {
					t.Fatalf("%s/%s: Key(%q) = %q, but Key(%q) = %q", kind, region, a, ka, ka, again)
				}
				if norm, ok := n.Normalize(kind, a); ok {
					if twice, ok := n.Normalize(kind, norm); !ok || twice != norm {
						t.Fatalf("%s/%s: Normalize(%q) = %q, but Normalize(%q) = %q, %v", kind, region, a, norm, norm, twice, ok)
					}
				}
				if !n.Match(kind, a, a) || n.Match(kind, a, b) != n.Match(kind, b, a) {
					t.Fatalf("%s/%s: Match is not reflexive and symmetric on %q, %q", kind, region, a, b)
				}
				if n.Match(kind, a, b) != (ka == kb) {
					t.Fatalf("%s/%s: Match(%q, %q) disagrees with their keys", kind, region, a, b)
				}
				// Equal keys match each other and never a value whose key differs.
				if ka == kb && kb != kc && (n.Match(kind, a, c) || n.Match(kind, b, c)) {
					t.Fatalf("%s/%s: %q and %q normalise equal, but %q (key %q) matches one of them", kind, region, a, b, c, kc)
				}
				if ka == kb && kb == kc && !n.Match(kind, a, c) {
					t.Fatalf("%s/%s: %q, %q and %q normalise equal, but %q and %q do not match", kind, region, a, b, c, a, c)
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
