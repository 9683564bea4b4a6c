package normalize

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// foldCase is Unicode full case folding, which is what case-insensitive comparison means
// (ß and SS, σ and ς compare equal); lower-casing is not.
var foldCase = cases.Fold()

// normalizeEmail trims, folds the case of the whole address (mail systems treat the local part
// as case-insensitive in practice, and a subject must not escape erasure by a capital letter),
// and writes the domain in its ASCII form so that bücher.example and xn--bcher-kva.example are one.
func normalizeEmail(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) {
		return "", false
	}
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 {
		return "", false
	}
	local := foldText(v[:at])
	domain := foldText(v[at+1:])
	if local == "" || domain == "" || strings.ContainsFunc(local+domain, isSpace) {
		return "", false
	}
	if ascii, err := idna.Lookup.ToASCII(domain); err == nil && ascii != "" {
		domain = ascii
	}
	return local + "@" + domain, true
}

// foldText is NFC after case folding, repeated until stable: folding can produce sequences
// that compose differently, and the key must not change when normalised again.
func foldText(s string) string {
	for range 4 {
		next := norm.NFC.String(foldCase.String(s))
		if next == s {
			break
		}
		s = next
	}
	return s
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0
}

// EmailCandidates are spellings of the normalised address key that a database's lower() of a
// stored value may produce: the key itself, the domain in Unicode, and each with the local part
// lower-cased instead of folded. A search on them narrows the rows; Key decides.
func EmailCandidates(raw, key string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(key)
	add(strings.ToLower(strings.TrimSpace(raw)))
	at := strings.LastIndexByte(key, '@')
	if at < 0 {
		return out
	}
	local, domain := key[:at], key[at+1:]
	unicodeDomain, err := idna.Lookup.ToUnicode(domain)
	if err != nil {
		unicodeDomain = domain
	}
	add(local + "@" + unicodeDomain)
	rawTrim := strings.TrimSpace(raw)
	if rat := strings.LastIndexByte(rawTrim, '@'); rat > 0 {
		lowerLocal := strings.ToLower(rawTrim[:rat])
		add(lowerLocal + "@" + domain)
		add(lowerLocal + "@" + unicodeDomain)
	}
	return out
}

// FoldCase is the case folding email keys use (full Unicode folding, then NFC), for searching
// text that may hold an address in any letter case: a folded text holds a folded address in
// whatever case either was written.
func FoldCase(s string) string { return foldText(s) }
