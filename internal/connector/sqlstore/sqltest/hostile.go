package sqltest

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// HostileValues are identifier values that break sloppy matching: wildcards, quotes, injection,
// NUL, padding, case and width variants, numbers in disguise, long and non-ASCII strings.
var HostileValues = []string{
	"a%b_c'@x.com",
	"%", "_", "%%", "*", "?", "[a-z]*", "\\", "\\%",
	"' OR '1'='1", "'; DROP TABLE people; --", "\" OR \"\"=\"", "`people`", "$1", "?1", ":name", "%s%d",
	"a\x00b", "\x00",
	" ", "a b", "\t\n", "trailing ",
	"Ünïcödé 日本語 🙂", "ＡＬＩＣＥ", "ß", "İ", "e\u0301",
	strings.Repeat("é✓x", 1800), // about 10 KB
	"0", "42", "-1", "042", "+42", "42.0", "4.2e1", "0x2A", "42abc", "9223372036854775808",
	"NULL", "null", "true",
}

// variants are bystander values a loose comparison would confuse with v.
func variants(v string) []string {
	cands := []string{
		v + "x", "x" + v, v + " ", " " + v, strings.ToUpper(v), strings.ToLower(v),
		strings.ReplaceAll(v, "%", "x"), strings.ReplaceAll(v, "_", "x"), strings.ReplaceAll(v, "'", "''"),
		"", " ", "%", "_", "*", "s", "ss", "SS", "a", "e", "é", "i", "I", "42", "42 ", "0", "1",
	}
	if r := []rune(v); len(r) > 1 {
		cands = append(cands, string(r[:len(r)-1]), string(r[1:]))
	}
	seen := map[string]bool{v: true}
	var out []string
	for _, c := range cands {
		if !seen[c] && utf8.ValidString(c) {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// testHostile erases subjects whose every identifier is hostile from tables full of
// near-miss bystanders: exactly the subject's rows may change. The columns compare exactly (as:
// exact), which is what opting out of normalised matching must give; testNormalized covers the
// normalised kinds.
func (h Harness) testHostile(t *testing.T) {
	d := h.newDB(t)
	d.exec(t, "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, user_id INTEGER)")
	d.exec(t, "CREATE TABLE cards (id INTEGER PRIMARY KEY, email TEXT, holder TEXT)")
	spec := fixtureSpec(h.Dialect.Type())
	spec.Tables = []privacyv1alpha1.TableMapping{
		{Name: "people", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
			{Column: "email", Identifier: "email", As: privacyv1alpha1.MatchExact},
			{Column: "phone", Identifier: "phone", As: privacyv1alpha1.MatchExact},
			{Column: "user_id", Identifier: "userId"}}},
		{Name: "cards", Action: privacyv1alpha1.ActionMask,
			Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email", As: privacyv1alpha1.MatchExact}},
			Mask:  []privacyv1alpha1.ColumnMask{{Column: "holder", Strategy: privacyv1alpha1.MaskRedact}}},
	}
	c := h.client(t, d.secret, spec, sqlstore.Options{})
	storable := func(s string) bool { return !h.RejectsNUL || !strings.ContainsRune(s, 0) }

	for i, v := range HostileValues {
		t.Run(fmt.Sprintf("%d_%s", i, label(v)), func(t *testing.T) {
			d.exec(t, "DELETE FROM people")
			d.exec(t, "DELETE FROM cards")
			var subjectPeople, subjectCards []int64
			if storable(v) {
				d.insert(t, "people", []string{"id", "email", "phone", "user_id"}, []any{1, v, "p", 1000})
				d.insert(t, "people", []string{"id", "email", "phone", "user_id"}, []any{2, "e", v, 1001})
				d.insert(t, "cards", []string{"id", "email", "holder"}, []any{1, v, "Holder"})
				subjectPeople, subjectCards = []int64{1, 2}, []int64{1}
			}
			id := int64(3)
			if n, ok := sqlstore.CanonicalInt(v); ok && n >= -1<<31 && n < 1<<31 {
				d.insert(t, "people", []string{"id", "email", "phone", "user_id"}, []any{id, "e", "p", n})
				subjectPeople = append(subjectPeople, id)
				id++
			}
			for _, b := range variants(v) {
				if !storable(b) {
					continue
				}
				d.insert(t, "people", []string{"id", "email", "phone", "user_id"}, []any{id, b, b, nil})
				d.insert(t, "cards", []string{"id", "email", "holder"}, []any{id, b, "Bystander"})
				id++
			}
			for _, n := range []int64{42, 0, 1, -1, 420, 2147483647} {
				if s := fmt.Sprint(n); s != v {
					d.insert(t, "people", []string{"id", "email", "phone", "user_id"}, []any{id, nil, nil, n})
					id++
				}
			}
			people, cards := d.rows(t, "people"), d.rows(t, "cards")

			ids := connector.Identifiers{"email": v, "phone": v, "userId": v}
			req := connector.Request{ID: "h", Identifiers: ids}
			res, err := c.Erase(ctxFor(t), req)
			if err != nil {
				noValues(t, err.Error(), ids)
				t.Fatalf("Erase: %v", err)
			}
			if res.Erased != int64(len(subjectPeople)) || res.Masked != int64(len(subjectCards)) {
				t.Errorf("Erase: erased %d masked %d, want %d and %d", res.Erased, res.Masked, len(subjectPeople), len(subjectCards))
			}
			sameRows(t, "people", without(people, subjectPeople...), d.rows(t, "people"))
			sameRows(t, "cards (bystanders)", without(cards, subjectCards...), without(d.rows(t, "cards"), subjectCards...))
			for _, cid := range subjectCards {
				if got := d.value(t, "cards", "holder", cid); got != privacyv1alpha1.RedactedMarker {
					t.Errorf("cards %d holder: %#v", cid, got)
				}
			}
			ver, err := c.Verify(ctxFor(t), req)
			if err != nil {
				noValues(t, err.Error(), ids)
				t.Fatalf("Verify: %v", err)
			}
			if ver.Remaining != 0 {
				t.Errorf("Verify: remaining %v", ver.RemainingLocations)
			}
			if _, err := c.Verify(ctxFor(t), connector.Request{ID: "h", Identifiers: ids, Deep: true}); err != nil {
				noValues(t, err.Error(), ids)
				t.Fatalf("deep Verify: %v", err)
			}
			if _, err := c.Collect(ctxFor(t), req); err != nil {
				noValues(t, err.Error(), ids)
				t.Fatalf("Collect: %v", err)
			}
		})
	}
}

// label names a subtest without putting a long or odd value into test output.
func label(v string) string {
	var b strings.Builder
	for _, r := range v {
		if b.Len() >= 16 {
			break
		}
		if r < 128 && (r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('x')
		}
	}
	return fmt.Sprintf("%s_len%d", b.String(), len(v))
}
