package discover

import (
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

func TestClassifyIdentifier(t *testing.T) {
	text := func(name string) sqlstore.Column {
		return sqlstore.Column{Name: name, Type: "varchar", Text: true, Nullable: true}
	}
	typed := func(name, typ string) sqlstore.Column { return sqlstore.Column{Name: name, Type: typ} }
	cases := []struct {
		col        sqlstore.Column
		identifier string
		secondary  bool
	}{
		{text("email"), IdentifierEmail, false},
		{text("Email"), IdentifierEmail, false},
		{text("email_address"), IdentifierEmail, false},
		{text("contactEmail"), IdentifierEmail, false},
		{text("alt_email"), IdentifierEmail, true},
		{text("backupEmail"), IdentifierEmail, true},
		{text("phone_number"), IdentifierPhone, false},
		{text("mobile"), IdentifierPhone, false},
		{text("emergency_phone"), IdentifierPhone, true},
		{typed("user_id", "uuid"), IdentifierUserID, false},
		{typed("userId", "bigint"), IdentifierUserID, false},
		{text("user_id"), IdentifierUserID, false},
		// Not identifiers: a flag about the email, a count, an email column of another type.
		{typed("email_verified", "boolean"), "", false},
		{text("email_domain"), "", false},
		{typed("email", "integer"), "", false},
		{typed("phone_count", "integer"), "", false},
		{typed("user_id", "timestamp"), "", false},
	}
	for _, c := range cases {
		got, ok := classifyIdentifier(c.col)
		if c.identifier == "" {
			if ok {
				t.Errorf("%s (%s) classified as %s", c.col.Name, c.col.Type, got.identifier)
			}
			continue
		}
		if !ok || got.identifier != c.identifier || got.secondary != c.secondary {
			t.Errorf("%s: got %+v (%v), want %s secondary=%v", c.col.Name, got, ok, c.identifier, c.secondary)
		}
	}
}

func TestDerivedName(t *testing.T) {
	for _, c := range []struct{ table, column, want string }{
		{"customer", "id", "customerId"},
		{"orders", "id", "orderId"},
		{"order_item", "id", "orderItemId"},
		{"payment_cards", "id", "paymentCardId"},
		{"address", "id", "addressId"},
		{"addresses", "id", "addressId"},
		{"categories", "id", "categoryId"},
		{"customer", "uuid", "customerUuid"},
		{"_audit", "id", "auditId"},
		{"Customer", "ID", "customerId"},
	} {
		if got := derivedName(c.table, c.column); got != c.want {
			t.Errorf("derivedName(%s, %s) = %s, want %s", c.table, c.column, got, c.want)
		}
	}
}

func TestNoIdentifierIsNoProposal(t *testing.T) {
	cat := &Catalog{Tables: []*CatalogTable{{Name: "t", Columns: []sqlstore.Column{{Name: "phone", Type: "text", Text: true}}}}}
	if _, err := Propose(cat, fakeDialect{}, Options{}); err == nil {
		t.Fatal("a catalog without an email column gave a proposal")
	}
	p, err := Propose(cat, fakeDialect{}, Options{Known: []string{IdentifierPhone}})
	if err != nil || len(p.Listings) != 1 || p.Listings[0].Mapping.Match[0].Identifier != IdentifierPhone {
		t.Fatalf("with phone known: %+v, %v", p, err)
	}
}

func TestSelfReferenceAndCyclesAreNotFollowed(t *testing.T) {
	id := sqlstore.Column{Name: "id", Type: "integer"}
	cat := &Catalog{
		Tables: []*CatalogTable{
			{Name: "a", Columns: []sqlstore.Column{id, {Name: "email", Type: "text", Text: true}, {Name: "b_id", Type: "integer"}, {Name: "referrer_id", Type: "integer"}}},
			{Name: "b", Columns: []sqlstore.Column{id, {Name: "a_id", Type: "integer"}}},
		},
		ForeignKeys: []sqlstore.ForeignKey{
			{Name: "a_referrer", From: sqlstore.TableName{Table: "a"}, FromColumn: "referrer_id", To: sqlstore.TableName{Table: "a"}, ToColumn: "id"},
			{Name: "b_a", From: sqlstore.TableName{Table: "b"}, FromColumn: "a_id", To: sqlstore.TableName{Table: "a"}, ToColumn: "id"},
			{Name: "a_b", From: sqlstore.TableName{Table: "a"}, FromColumn: "b_id", To: sqlstore.TableName{Table: "b"}, ToColumn: "id"},
		},
	}
	p, err := Propose(cat, fakeDialect{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Listings {
		for _, m := range l.Mapping.Match {
			if m.Column == "referrer_id" || m.Column == "b_id" {
				t.Errorf("table %s matches %s: a self reference or a cycle was followed", l.Mapping.Name, m.Column)
			}
		}
	}
}

type fakeDialect struct{ sqlstore.Dialect }

func (fakeDialect) FoldColumnNames() bool { return false }
