package normalize

import (
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

func knownRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(region) != 0
}

// normalizePhone parses v with libphonenumber's rules (a Go port) and writes it as E.164, with
// an extension kept as ";ext=N" so that a number with an extension is not the bare line. A
// leading 00 is read as the international prefix whatever the region. Without a country code
// and without a default region the number cannot be placed, and ok is false.
func normalizePhone(v, region string) (string, bool) {
	v = strings.TrimSpace(v)
	if v == "" || !strings.ContainsFunc(v, unicode.IsDigit) {
		return "", false
	}
	if rest, ok := strings.CutPrefix(v, "00"); ok {
		v = "+" + rest
	}
	first, ok := formatPhone(v, region)
	if !ok {
		return "", false
	}
	// A key must normalise to itself; the few inputs whose E.164 form parses back differently
	// are not numbers anyone can be matched by.
	if second, ok := formatPhone(first, region); !ok || second != first {
		return "", false
	}
	return first, true
}

func formatPhone(v, region string) (string, bool) {
	if region == "" && !strings.HasPrefix(v, "+") {
		return "", false
	}
	num, err := phonenumbers.Parse(v, region)
	if err != nil || num.GetNationalNumber() == 0 {
		return "", false
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	if ext := num.GetExtension(); ext != "" {
		out += ";ext=" + ext
	}
	return out, true
}

// PhoneDigits is the national significant number of a normalised phone key: the digits every
// stored spelling of the number contains in one run, whatever its prefix or formatting. A
// search on them narrows the rows; Key decides.
func PhoneDigits(key string) (string, bool) {
	num, err := phonenumbers.Parse(strings.SplitN(key, ";", 2)[0], "")
	if err != nil {
		return "", false
	}
	digits := phonenumbers.GetNationalSignificantNumber(num)
	return digits, digits != ""
}
