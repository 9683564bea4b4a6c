package normalize

import "testing"

func TestEmailVariantsShareOneKey(t *testing.T) {
	n := Normalizer{}
	const want = "customer-1@example.com"
	for _, v := range []string{
		"customer-1@example.com",
		"Customer-1@Example.com",
		" customer-1@EXAMPLE.com ",
		"\tCUSTOMER-1@example.COM\n",
	} {
		if got := n.Key(Email, v); got != want {
			t.Errorf("Key(email, %q) = %q, want %q", v, got, want)
		}
	}
}

func TestEmailInternationalisedDomain(t *testing.T) {
	n := Normalizer{}
	a := n.Key(Email, "Anna@Bücher.example")
	b := n.Key(Email, "anna@xn--bcher-kva.example")
	if a != b || a != "anna@xn--bcher-kva.example" {
		t.Fatalf("keys %q and %q, want both anna@xn--bcher-kva.example", a, b)
	}
	if !n.Match(Email, "STRASSE@example.com", "straße@example.com") {
		t.Error("full case folding: ß and SS must compare equal")
	}
}

func TestEmailNearMissesDoNotMatch(t *testing.T) {
	n := Normalizer{}
	for _, other := range []string{
		"customer-11@example.com",
		"customer-1@example.co",
		"customer-1@example.com.evil",
		"customer-1 @example.com",
		"",
	} {
		if n.Match(Email, "customer-1@example.com", other) {
			t.Errorf("%q matched customer-1@example.com", other)
		}
	}
}

func TestPhoneFormatsShareOneKey(t *testing.T) {
	n := Normalizer{Region: "US"}
	const want = "+15550100001"
	for _, v := range []string{
		"+15550100001",
		"+1 (555) 010-0001",
		"+1-555-010-0001",
		"+1.555.010.0001",
		"0015550100001",
		"00 1 555 010 0001",
		"(555) 010-0001",
		"555 010 0001",
		"5550100001",
	} {
		if got := n.Key(Phone, v); got != want {
			t.Errorf("Key(phone, %q) = %q, want %q", v, got, want)
		}
	}
}

func TestPhoneNearMissesDoNotMatch(t *testing.T) {
	n := Normalizer{Region: "US"}
	for _, other := range []string{
		"+15550100010",          // one digit differs
		"+15550100002",          // last digit differs
		"+445550100001",         // same national digits in another country
		"+1 555 010 0001 ext 7", // an extension is another line
		"",
	} {
		if n.Match(Phone, "+15550100001", other) {
			t.Errorf("%q matched +15550100001", other)
		}
	}
}

func TestPhoneWithoutCountryCodeNeedsARegion(t *testing.T) {
	if _, ok := (Normalizer{}).Normalize(Phone, "555 010 0001"); ok {
		t.Fatal("a national number normalised without a default region")
	}
	if got := (Normalizer{Region: "GB"}).Key(Phone, "020 7946 0018"); got != "+442079460018" {
		t.Fatalf("GB national number: got %q", got)
	}
	// The region only places numbers without a country code.
	if got := (Normalizer{Region: "GB"}).Key(Phone, "+1 555 010 0001"); got != "+15550100001" {
		t.Fatalf("international number under GB: got %q", got)
	}
}

func TestExactIsExact(t *testing.T) {
	n := Normalizer{Region: "US"}
	if n.Match(Exact, "User-1", "user-1") || n.Match(Exact, "u1", " u1") {
		t.Fatal("exact values matched a variant")
	}
	if !n.Match(Exact, "u1", "u1") {
		t.Fatal("exact value did not match itself")
	}
}

func TestKindFor(t *testing.T) {
	for _, tc := range []struct {
		identifier, as string
		want           Kind
	}{
		{"email", "", Email},
		{"email2", "", Email},
		{"EmailAddress", "", Email},
		{"phone", "", Phone},
		{"phoneMobile", "", Phone},
		{"userId", "", Exact},
		{"contact", "email", Email},
		{"email", "exact", Exact},
	} {
		if got := KindFor(tc.identifier, tc.as); got != tc.want {
			t.Errorf("KindFor(%q, %q) = %q, want %q", tc.identifier, tc.as, got, tc.want)
		}
	}
}

func TestValidateRegion(t *testing.T) {
	for _, ok := range []string{"", "US", "GB", "DE"} {
		if err := ValidateRegion(ok); err != nil {
			t.Errorf("ValidateRegion(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"us", "USA", "ZZ", "1"} {
		if err := ValidateRegion(bad); err == nil {
			t.Errorf("ValidateRegion(%q) accepted", bad)
		}
	}
}

func TestCandidatesHoldTheLowerCasedSpellings(t *testing.T) {
	key := (Normalizer{}).Key(Email, " Anna@Bücher.example ")
	cands := EmailCandidates(" Anna@Bücher.example ", key)
	want := map[string]bool{"anna@xn--bcher-kva.example": false, "anna@bücher.example": false}
	for _, c := range cands {
		if _, ok := want[c]; ok {
			want[c] = true
		}
	}
	for c, found := range want {
		if !found {
			t.Errorf("candidates %q miss %q", cands, c)
		}
	}
	digits, ok := PhoneDigits("+15550100001")
	if !ok || digits != "5550100001" {
		t.Fatalf("PhoneDigits = %q, %v", digits, ok)
	}
}
