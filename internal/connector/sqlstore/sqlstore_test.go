package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// stubDialect answers the few questions the I/O-free code asks; anything else panics.
type stubDialect struct {
	Dialect
	kind connector.ErrorKind
}

func (stubDialect) Type() privacyv1alpha1.StoreType      { return privacyv1alpha1.StoreTypeSQLite }
func (stubDialect) FoldColumnNames() bool                { return true }
func (stubDialect) QuoteIdent(name string) string        { return QuoteWith(`"`, name) }
func (d stubDialect) Classify(error) connector.ErrorKind { return d.kind }
func (stubDialect) ErrorCode(error) string               { return "" }
func (stubDialect) Placeholder(n int) string             { return fmt.Sprintf("$%d", n) }

func validSpec() *privacyv1alpha1.DataStoreSpec {
	return &privacyv1alpha1.DataStoreSpec{
		Type: privacyv1alpha1.StoreTypeSQLite,
		Tables: []privacyv1alpha1.TableMapping{
			{Name: "users", Action: privacyv1alpha1.ActionDelete,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}},
			{Name: "app.profiles", Action: privacyv1alpha1.ActionMask,
				Match: []privacyv1alpha1.ColumnMatch{{Column: "user_id", Identifier: "userId"}},
				Mask: []privacyv1alpha1.ColumnMask{{Column: "email", Strategy: privacyv1alpha1.MaskHash},
					{Column: "name", Strategy: privacyv1alpha1.MaskNullify}}},
			{Name: "invoices", Action: privacyv1alpha1.ActionRetain, RetainReason: "tax law",
				Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}},
		},
	}
}

func TestValidateSpec(t *testing.T) {
	p := NewProvider(stubDialect{}, Options{})
	if err := p.ValidateSpec(validSpec()); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*privacyv1alpha1.DataStoreSpec)
		want   string
	}{
		{"no tables", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables = nil }, "needs tables"},
		{"other type", func(s *privacyv1alpha1.DataStoreSpec) { s.Type = privacyv1alpha1.StoreTypeRedis }, "is not"},
		{"keys", func(s *privacyv1alpha1.DataStoreSpec) {
			s.Keys = []privacyv1alpha1.KeyMapping{{Pattern: "u:{email}", Action: privacyv1alpha1.KeyActionDelete}}
		}, "not keys"},
		{"duplicate table", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[2] = s.Tables[0] }, "listed twice"},
		{"bad provides column", func(s *privacyv1alpha1.DataStoreSpec) {
			s.Tables[0].Provides = []privacyv1alpha1.ColumnProvide{{Identifier: "userId", Column: "id; --"}}
		}, "not a valid identifier"},
		{"bad table name", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Name = "users; DROP TABLE x" }, "not a valid identifier"},
		{"three-part name", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Name = "a.b.c" }, "not a valid identifier"},
		{"bad match column", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Match[0].Column = `e"mail` }, "not a valid identifier"},
		{"no match", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Match = nil }, "match lists no column"},
		{"no identifier", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Match[0].Identifier = "" }, "names no identifier"},
		{"mask repeats", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[1].Mask[1].Column = "EMAIL" }, "masked twice"},
		{"mask without columns", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[1].Mask = nil }, "needs columns"},
		{"mask on delete", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Mask = s.Tables[1].Mask }, "only allowed with action mask"},
		{"unknown strategy", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[1].Mask[0].Strategy = "shuffle" }, "unknown mask strategy"},
		{"retain without reason", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[2].RetainReason = " " }, "retainReason"},
		{"unknown action", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Action = "archive" }, "unknown action"},
		{"unknown kind", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Match[0].As = "fuzzy" }, "unknown kind"},
		{"bad region", func(s *privacyv1alpha1.DataStoreSpec) { s.DefaultRegion = "ZZ" }, "default region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := validSpec()
			tc.mutate(spec)
			err := p.ValidateSpec(spec)
			if connector.KindOf(err) != connector.KindMapping || err == nil {
				t.Fatalf("want a mapping error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if err := p.ValidateSpec(nil); connector.KindOf(err) != connector.KindMapping || err == nil {
		t.Fatalf("nil spec: %v", err)
	}
}

func TestClassifyScrubsValues(t *testing.T) {
	ids := connector.Identifiers{"email": "alice@example.com", "userId": "42x"}
	driverErr := errors.New(`invalid input syntax for type integer: "42x" near alice@example.com`)
	err := Classify(stubDialect{kind: connector.KindMapping}, "erase", "", driverErr, ids)
	if connector.KindOf(err) != connector.KindMapping {
		t.Fatalf("kind %s", connector.KindOf(err))
	}
	for _, v := range ids {
		if strings.Contains(err.Error(), v) {
			t.Fatalf("message leaks a value: %s", err)
		}
	}
	if errors.Is(err, driverErr) {
		t.Fatal("the unscrubbed driver error is still reachable by unwrapping")
	}

	wrapped := fmt.Errorf("query alice@example.com: %w", context.DeadlineExceeded)
	err = Classify(stubDialect{kind: connector.KindMapping}, "verify", "", wrapped, ids)
	if connector.KindOf(err) != connector.KindUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a deadline must be Unavailable and recognisable: %v", err)
	}
	if strings.Contains(err.Error(), "alice@example.com") {
		t.Fatalf("message leaks a value: %s", err)
	}

	mapping := &MappingError{Problems: []string{"table t does not exist"}}
	if connector.KindOf(Classify(stubDialect{}, "check", "", mapping, nil)) != connector.KindMapping {
		t.Fatal("MappingError is not KindMapping")
	}
	own := connector.Errorf(connector.KindAuth, "check", "denied")
	if got := Classify(stubDialect{kind: connector.KindMapping}, "check", "", own, nil); !errors.Is(got, own) || got != own { //nolint:errorlint // the very same error value must come back
		t.Fatal("a connector error must pass through unchanged")
	}
	if Classify(stubDialect{}, "check", "", nil, nil) != nil {
		t.Fatal("nil must stay nil")
	}
}

func TestJSONValue(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	cases := []struct {
		in   any
		want any
	}{
		{nil, nil},
		{[]byte("héllo"), "héllo"},
		{[]byte{0xff, 0x00, 0x10}, "/wAQ"},
		{"plain", "plain"},
		{"\xff", "/w=="},
		{ts, "2026-01-02T03:04:05.0000006Z"},
		{int64(7), int64(7)},
		{true, true},
		{1.5, 1.5},
		{math.NaN(), "NaN"},
		{math.Inf(-1), "-Inf"},
	}
	for _, tc := range cases {
		got := JSONValue(tc.in)
		if got != tc.want {
			t.Errorf("JSONValue(%#v) = %#v, want %#v", tc.in, got, tc.want)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Errorf("JSONValue(%#v) does not marshal: %v", tc.in, err)
		}
	}
	if got := JSONValue(struct{ C chan int }{}); fmt.Sprint(got) == "" {
		t.Errorf("unmarshalable value: %#v", got)
	} else if _, err := json.Marshal(got); err != nil {
		t.Errorf("unmarshalable value not converted: %v", err)
	}
}

func TestCanonicalInt(t *testing.T) {
	for v, want := range map[string]bool{
		"42": true, "0": true, "-7": true, "9223372036854775807": true,
		"042": false, "+42": false, " 42": false, "42 ": false, "42.0": false, "4e1": false, "-0": false,
		"": false, "0x2A": false, "9223372036854775808": false, "٤٢": false,
	} {
		if _, ok := CanonicalInt(v); ok != want {
			t.Errorf("CanonicalInt(%q) = %v, want %v", v, ok, want)
		}
	}
	if _, ok := CanonicalUint("18446744073709551615"); !ok {
		t.Error("max uint64 refused")
	}
	if _, ok := CanonicalUint("-1"); ok {
		t.Error("negative accepted as unsigned")
	}
}

func TestUsableIdentifiers(t *testing.T) {
	got := UsableIdentifiers(connector.Identifiers{"email": "", "userId": "42"})
	if len(got) != 1 || got["userId"] != "42" {
		t.Fatalf("empty identifiers must be dropped: %v", got.Names())
	}
}

func TestMaskProblems(t *testing.T) {
	text := Column{Name: "c", Type: "varchar", Text: true, Nullable: true}
	short := text
	short.MaxLen = 9
	notNull := text
	notNull.Nullable = false
	integer := Column{Name: "c", Type: "int", Nullable: true}
	for _, tc := range []struct {
		col      Column
		strategy privacyv1alpha1.MaskStrategy
		want     string
	}{
		{text, privacyv1alpha1.MaskHash, ""},
		{text, privacyv1alpha1.MaskRedact, ""},
		{text, privacyv1alpha1.MaskNullify, ""},
		{short, privacyv1alpha1.MaskRedact, "at most 9"},
		{short, privacyv1alpha1.MaskHash, "at most 9"},
		{notNull, privacyv1alpha1.MaskNullify, "NOT NULL"},
		{integer, privacyv1alpha1.MaskHash, "text column"},
		{integer, privacyv1alpha1.MaskRedact, "text column"},
		{integer, privacyv1alpha1.MaskNullify, ""},
	} {
		got := maskProblem(tc.col, tc.strategy)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("maskProblem(%+v, %s) = %q, want %q", tc.col, tc.strategy, got, tc.want)
		}
	}
}

// FuzzTableName checks that only names matching the spec pattern are accepted, and that quoting
// an accepted name yields exactly its quoted parts.
func FuzzTableName(f *testing.F) {
	for _, s := range []string{"users", "app.users", "_a.b_1", "a.b.c", "a..b", ".a", "a.", "a b", `a"b`, "a`b",
		"users;--", "ü", "", "1a", strings.Repeat("a", 128), strings.Repeat("a", 63) + "." + strings.Repeat("b", 63)} {
		f.Add(s)
	}
	d := stubDialect{}
	f.Fuzz(func(t *testing.T, name string) {
		tn, err := ParseTableName(name)
		valid := len(name) <= maxTableName && tableNamePattern.MatchString(name)
		if (err == nil) != valid {
			t.Fatalf("ParseTableName(%q) error %v, pattern says valid=%v", name, err, valid)
		}
		if err != nil {
			if _, qerr := QuoteTable(d, TableName{Table: name}); qerr == nil {
				t.Fatalf("QuoteTable accepted %q", name)
			}
			return
		}
		if tn.String() != name {
			t.Fatalf("round trip %q -> %q", name, tn.String())
		}
		q, err := QuoteTable(d, tn)
		if err != nil {
			t.Fatal(err)
		}
		want := `"` + strings.ReplaceAll(name, ".", `"."`) + `"`
		if q != want {
			t.Fatalf("QuoteTable(%q) = %s, want %s", name, q, want)
		}
	})
}

// A store's failure is scrubbed of every value of the request, the derived and shared ones too.
func TestStoreFailureScrubsDerivedValues(t *testing.T) {
	s := &Store{d: stubDialect{kind: connector.KindUnavailable}}
	req := connector.Request{Identifiers: connector.Identifiers{"email": "alice@example.com"},
		Values: connector.Values{"orderId": {"ord-9931"}}, Shared: connector.Values{"addressId": {"addr-77"}}}
	err := s.failAt("erase", "orders", errors.New(`no row ord-9931 for addr-77 of alice@example.com`), req)
	for _, v := range []string{"ord-9931", "addr-77", "alice@example.com"} {
		if strings.Contains(err.Error(), v) {
			t.Fatalf("message leaks %q: %s", v, err)
		}
	}
	if ce := (*connector.Error)(nil); !errors.As(err, &ce) || ce.Location != "orders" {
		t.Fatalf("location lost: %v", err)
	}
}
