package discover

import (
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// Identifier names of the identifiers Secret that discover recognises columns for.
const (
	IdentifierEmail  = "email"
	IdentifierPhone  = "phone"
	IdentifierUserID = "userId"
)

// identifierColumn is a column that looks like it holds one of the subject's identifiers.
type identifierColumn struct {
	column     sqlstore.Column
	identifier string
	// secondary: the name says the value is someone else's contact on the row (alt_email,
	// backup_phone): a match there masks the column instead of deleting the row.
	secondary bool
}

// secondaryPrefixes mark a contact that is not the row's own.
var secondaryPrefixes = []string{"alt", "alternate", "alternative", "secondary", "backup", "other", "cc", "bcc",
	"recovery", "emergency", "partner", "referrer", "referred", "invited", "invitee", "recipient", "guardian", "spouse"}

// words splits a column name into lower-case words: snake_case and camelCase both.
func words(name string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	runes := []rune(name)
	for i, r := range runes {
		switch {
		case r == '_' || r == '-' || r == '.':
			flush()
		case unicode.IsUpper(r) && i > 0 && unicode.IsLower(runes[i-1]):
			flush()
			cur.WriteRune(unicode.ToLower(r))
		default:
			cur.WriteRune(unicode.ToLower(r))
		}
	}
	flush()
	return out
}

// classifyIdentifier says which identifier a column looks like holding, by its name and type:
// an email or phone column must hold text; a user id may be text, a uuid or an integer.
func classifyIdentifier(c sqlstore.Column) (identifierColumn, bool) {
	w := words(c.Name)
	if len(w) == 0 {
		return identifierColumn{}, false
	}
	last := w[len(w)-1]
	prefix := w[:len(w)-1]
	// "email_address", "phone_number": the kind is the word before the last.
	if len(w) >= 2 && (last == "address" || last == "number" || last == "no") {
		last, prefix = w[len(w)-2], w[:len(w)-2]
	}
	var id string
	switch {
	case (last == "email" || last == "mail") && c.Text:
		id = IdentifierEmail
	case (last == "phone" || last == "mobile" || last == "telephone" || last == "msisdn" || last == "cell") && c.Text:
		id = IdentifierPhone
	case isUserID(w) && (c.Text || isIntegerOrUUID(c.Type)):
		id, prefix = IdentifierUserID, nil
	default:
		return identifierColumn{}, false
	}
	secondary := slices.ContainsFunc(prefix, func(p string) bool { return slices.Contains(secondaryPrefixes, p) })
	return identifierColumn{column: c, identifier: id, secondary: secondary}, true
}

func isUserID(w []string) bool {
	joined := strings.Join(w, "_")
	return joined == "user_id" || joined == "userid" || joined == "user_uuid" || joined == "uid" ||
		joined == "external_user_id" || joined == "subject_id"
}

func isIntegerOrUUID(typ string) bool {
	t := strings.ToLower(typ)
	return strings.Contains(t, "int") || t == "uuid" || t == "serial" || t == "bigserial"
}

// personalWords mark a column of a referenced table as personal data (an address, a name, a
// contact), so that the table is worth masking when the subject's rows point at it. A lookup
// table (country, currency, product) has none of them and is left alone.
var personalWords = []string{"street", "addr", "address", "line1", "line2", "city", "town", "zip", "zipcode",
	"postcode", "postal", "house", "apartment", "building", "recipient", "firstname", "lastname", "surname",
	"fullname", "email", "mail", "phone", "mobile", "birth", "birthday", "dob", "iban", "latitude",
	"longitude", "lat", "lng", "lon", "ssn", "passport"}

func looksPersonal(c sqlstore.Column) bool {
	w := words(c.Name)
	joined := strings.Join(w, "")
	if joined == "firstname" || joined == "lastname" || joined == "fullname" || joined == "givenname" || joined == "familyname" {
		return true
	}
	return slices.ContainsFunc(w, func(x string) bool { return slices.Contains(personalWords, x) })
}

var identifierNameChars = regexp.MustCompile(`[^A-Za-z0-9]`)

// derivedName names the identifier a table's column provides: customer.id is customerId,
// orders.id orderId, payment_card.id paymentCardId, customer.uuid customerUuid.
func derivedName(table, column string) string {
	w := words(table)
	if n := len(w); n > 0 {
		w[n-1] = singular(w[n-1])
	}
	if lower(column) == "id" {
		w = append(w, "id")
	} else {
		w = append(w, words(column)...)
	}
	var b strings.Builder
	for i, x := range w {
		x = identifierNameChars.ReplaceAllString(x, "")
		if x == "" {
			continue
		}
		if i > 0 && b.Len() > 0 {
			x = strings.ToUpper(x[:1]) + x[1:]
		}
		b.WriteString(x)
	}
	name := strings.TrimLeft(b.String(), "0123456789")
	if name == "" {
		name = "row"
	}
	if len(name) > 60 {
		name = name[:60]
	}
	return name
}

// singular undoes the common English plurals of table names (orders, addresses, categories).
func singular(w string) string {
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses") || strings.HasSuffix(w, "xes") || strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "ss") || strings.HasSuffix(w, "us") || strings.HasSuffix(w, "is"):
		return w
	case strings.HasSuffix(w, "s") && len(w) > 3:
		return w[:len(w)-1]
	}
	return w
}
