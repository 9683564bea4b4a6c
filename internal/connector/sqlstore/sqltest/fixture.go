package sqltest

import (
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

const (
	subjectEmail = "alice@example.com"
	subjectPhone = "+49 170 1234567"
	subjectUser  = "42"
	retainReason = "Invoices are kept 10 years (tax law)"
)

func subject() connector.Identifiers {
	return connector.Identifiers{"email": subjectEmail, "phone": subjectPhone, "userId": subjectUser}
}

var fixtureTables = []string{"users", "sessions", "profiles", "newsletter", "invoices"}

// createFixture creates the shop schema. Every matched column is indexed except
// sessions.user_id, which Check must warn about.
func (d *db) createFixture(t *testing.T) {
	t.Helper()
	for _, stmt := range []string{
		"CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(255), phone VARCHAR(64), name VARCHAR(255), notes TEXT)",
		"CREATE INDEX users_email ON users (email)",
		"CREATE INDEX users_phone ON users (phone)",
		"CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER, email VARCHAR(255))",
		"CREATE INDEX sessions_email ON sessions (email)",
		"CREATE TABLE profiles (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, email VARCHAR(255), display_name VARCHAR(255), bio TEXT, token VARCHAR(255))",
		"CREATE INDEX profiles_user ON profiles (user_id)",
		"CREATE TABLE newsletter (id INTEGER PRIMARY KEY, email VARCHAR(255), name VARCHAR(255))",
		"CREATE INDEX newsletter_email ON newsletter (email)",
		"CREATE TABLE invoices (id INTEGER PRIMARY KEY, email VARCHAR(255), amount INTEGER)",
		"CREATE INDEX invoices_email ON invoices (email)",
	} {
		d.exec(t, stmt)
	}
}

// seedFixture fills the schema with the subject's rows and bystanders that differ from them in
// the ways a sloppy comparison would miss: prefix, near domains and numbers. Rows 4 and 5 spell
// the subject's email in another case and with a trailing space: email matching is normalised,
// so they are the subject's.
func (d *db) seedFixture(t *testing.T) {
	t.Helper()
	d.insert(t, "users", []string{"id", "email", "phone", "name", "notes"},
		[]any{1, subjectEmail, "+1 555 0100", "Alice", "vip"},
		[]any{2, "alice.work@example.com", subjectPhone, "Alice W", nil},
		[]any{3, "bob@example.com", "+49 170 7654321", "Bob", "forwarded from " + subjectEmail},
		[]any{4, "ALICE@example.com", nil, "Upper", nil},
		[]any{5, subjectEmail + " ", nil, "Trailing", nil},
		[]any{6, "x" + subjectEmail, subjectPhone + "9", "Prefix", nil},
		[]any{7, "alice@example.co", nil, "Short", nil},
		[]any{8, nil, nil, "Nobody", nil},
	)
	d.insert(t, "sessions", []string{"id", "user_id", "email"},
		[]any{1, 42, "x@example.com"},
		[]any{2, 7, subjectEmail},
		[]any{3, 7, "bob@example.com"},
		[]any{4, 420, nil},
		[]any{5, 4, nil},
	)
	d.insert(t, "profiles", []string{"id", "user_id", "email", "display_name", "bio", "token"},
		[]any{1, 42, subjectEmail, "Alice", "likes cats", "t1"},
		[]any{2, 42, nil, "Al", nil, "t2"},
		[]any{3, 7, "bob@example.com", "Bob", "likes dogs", "t3"},
		[]any{4, 420, subjectEmail, "Someone", "shares a mailbox", "t4"},
	)
	d.insert(t, "newsletter", []string{"id", "email", "name"},
		[]any{1, subjectEmail, "Alice"},
		[]any{2, "bob@example.com", "Bob"},
	)
	d.insert(t, "invoices", []string{"id", "email", "amount"},
		[]any{1, subjectEmail, 100},
		[]any{2, subjectEmail, 250},
		[]any{3, "bob@example.com", 80},
	)
}

func (d *db) snapshot(t *testing.T) map[string]map[int64]map[string]string {
	t.Helper()
	out := map[string]map[int64]map[string]string{}
	for _, table := range fixtureTables {
		out[table] = d.rows(t, table)
	}
	return out
}

func fixtureSpec(typ privacyv1alpha1.StoreType) *privacyv1alpha1.DataStoreSpec {
	return &privacyv1alpha1.DataStoreSpec{
		Type:       typ,
		Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "db", Key: "dsn"}},
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "users", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
				{Column: "email", Identifier: "email"}, {Column: "phone", Identifier: "phone"}}},
			{Name: "sessions", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
				{Column: "user_id", Identifier: "userId"}, {Column: "email", Identifier: "email"}}},
			{Name: "profiles", Action: privacyv1alpha1.ActionMask,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "user_id", Identifier: "userId"}},
				Mask: []privacyv1alpha1.ColumnMask{
					{Column: "email", Strategy: privacyv1alpha1.MaskHash},
					{Column: "display_name", Strategy: privacyv1alpha1.MaskRedact},
					{Column: "bio", Strategy: privacyv1alpha1.MaskNullify},
				}},
			{Name: "newsletter", Action: privacyv1alpha1.ActionMask,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
				Mask: []privacyv1alpha1.ColumnMask{
					{Column: "email", Strategy: privacyv1alpha1.MaskHash},
					{Column: "name", Strategy: privacyv1alpha1.MaskNullify},
				}},
			{Name: "invoices", Action: privacyv1alpha1.ActionRetain, RetainReason: retainReason,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}},
		},
	}
}

// Expected outcome of erasing the subject from the fixture.
var (
	wantErased   = map[string]int64{"users": 4, "sessions": 2}
	wantMasked   = map[string]int64{"profiles": 2, "newsletter": 1}
	wantRetained = map[string]int64{"invoices": 2}
	// subject rows per table, by id
	subjectRows = map[string][]int64{
		"users": {1, 2, 4, 5}, "sessions": {1, 2}, "profiles": {1, 2}, "newsletter": {1}, "invoices": {1, 2},
	}
)

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func merge(ms ...map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// subjectRecords are the ids of every row Collect returns for the subject.
func subjectRecords() []int64 {
	var out []int64
	for _, rows := range subjectRows {
		out = append(out, rows...)
	}
	return out
}
