package subject

import (
	"errors"
	"strings"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
)

func TestDigestDependsOnSaltNamesAndValues(t *testing.T) {
	base := connector.Identifiers{"email": "ada@example.com", "userId": "42"}
	d := Digest([]byte("salt-a"), base)
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Fatalf("unexpected digest form %q", d)
	}
	if strings.Contains(d, "ada") {
		t.Fatal("digest leaks the identifier")
	}
	same := Digest([]byte("salt-a"), connector.Identifiers{"userId": "42", "email": "ada@example.com"})
	if d != same {
		t.Fatal("digest must not depend on map order")
	}
	for name, other := range map[string]string{
		"other salt":       Digest([]byte("salt-b"), base),
		"other value":      Digest([]byte("salt-a"), connector.Identifiers{"email": "ada@example.org", "userId": "42"}),
		"moved boundary":   Digest([]byte("salt-a"), connector.Identifiers{"email": "ada@example.com4", "userId": "2"}),
		"renamed":          Digest([]byte("salt-a"), connector.Identifiers{"mail": "ada@example.com", "userId": "42"}),
		"fewer identifier": Digest([]byte("salt-a"), connector.Identifiers{"email": "ada@example.com"}),
	} {
		if other == d {
			t.Errorf("%s: digest did not change", name)
		}
	}
}

func TestFromSecretData(t *testing.T) {
	ok, err := FromSecretData("s", map[string][]byte{"email": []byte("a@b.c"), "user_id": []byte("7")})
	if err != nil || ok["email"] != "a@b.c" || ok["user_id"] != "7" {
		t.Fatalf("valid data refused: %v %v", ok, err)
	}
	for name, data := range map[string]map[string][]byte{
		"empty secret": {},
		"empty value":  {"email": nil},
		"bad name":     {"1email": []byte("x")},
		"too long":     {"email": []byte(strings.Repeat("x", MaxIdentifierBytes+1))},
		"not utf-8":    {"email": {0xff, 0xfe}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := FromSecretData("s", data)
			var p *Problem
			if !errors.As(err, &p) || p.Reason != "IdentifiersInvalid" {
				t.Fatalf("want an IdentifiersInvalid problem, got %v", err)
			}
		})
	}
}

func TestProblemMessagesNeverHoldValues(t *testing.T) {
	_, err := FromSecretData("s", map[string][]byte{"email": []byte("secret@example.com"), "bad name": []byte("x")})
	if err == nil || strings.Contains(err.Error(), "secret@example.com") {
		t.Fatalf("want an error without the value, got %v", err)
	}
}
