package sqltest

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// RunConformance runs the whole suite against h.
func RunConformance(t *testing.T, h Harness) {
	t.Run("Check", h.testCheck)
	t.Run("EraseVerifyCollect", h.testEraseVerifyCollect)
	t.Run("DryRun", h.testDryRun)
	t.Run("DeepVerify", h.testDeepVerify)
	t.Run("Mapping", h.testMapping)
	t.Run("Connection", h.testConnection)
	t.Run("Batches", h.testBatches)
	t.Run("InterruptedAtomic", h.testInterruptedAtomic)
	t.Run("Hostile", h.testHostile)
	t.Run("MaskState", h.testMaskState)
	t.Run("HashUnicode", h.testHashUnicode)
	t.Run("Normalized", h.testNormalized)
	t.Run("NormalizedValues", h.testNormalizedValues)
	t.Run("NormalizedCases", h.testNormalizedCases)
	t.Run("ErasureFromPlannedSpellings", h.testErasureFromPlannedSpellings)
	t.Run("ConcurrentReads", h.testConcurrentReads)
	t.Run("SchemaChange", h.testSchemaChange)
	if h.NewSchema != nil {
		t.Run("SchemaQualified", h.testSchemaQualified)
	}
	if h.Server != nil {
		t.Run("Outage", h.testOutage)
		t.Run("OutageMidBatches", h.testOutageMidBatches)
		t.Run("OutageMidTransaction", h.testOutageMidTransaction)
	}
}

func (h Harness) fixture(t *testing.T) (*db, connector.Client) {
	t.Helper()
	d := h.newDB(t)
	d.createFixture(t)
	d.seedFixture(t)
	return d, h.client(t, d.secret, fixtureSpec(h.Dialect.Type()), sqlstore.Options{})
}

func (h Harness) testCheck(t *testing.T) {
	_, c := h.fixture(t)
	res, err := c.Check(ctxFor(t))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	// Warnings about normalised searches are NormalizedCases' subject; the phone column is
	// always scanned, so it is always warned about.
	want := []string{"column user_id of table sessions has no index: erasure scans the table"}
	var plain []string
	phoneWarned := false
	for _, w := range res.Warnings {
		switch {
		case strings.HasPrefix(w, "column phone of table users is matched as phone"):
			phoneWarned = true
		case strings.Contains(w, " is matched as "):
		default:
			plain = append(plain, w)
		}
	}
	if strings.Join(plain, "\n") != strings.Join(want, "\n") || !phoneWarned {
		t.Fatalf("warnings: want %q and one about users.phone, got %q", want, res.Warnings)
	}
}

func (h Harness) testEraseVerifyCollect(t *testing.T) {
	d, c := h.fixture(t)
	ctx := ctxFor(t)
	req := connector.Request{ID: "req-1", Identifiers: subject()}
	before := d.snapshot(t)

	v, err := c.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify before: %v", err)
	}
	sameCounts(t, "remaining before erase", merge(wantErased, wantMasked), v.RemainingLocations)
	sameCounts(t, "retained before erase", wantRetained, v.RetainedLocations)
	if v.Remaining != sum(wantErased)+sum(wantMasked) || v.Retained != sum(wantRetained) {
		t.Errorf("before erase: remaining %d retained %d", v.Remaining, v.Retained)
	}

	col, err := c.Collect(ctx, req)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	checkCollected(t, col, subjectRows)
	for _, r := range col.Records {
		if r.Location == "users" && jsonID(t, r) == 1 && r.Data["email"] != subjectEmail {
			t.Errorf("collected users row 1 email = %#v", r.Data["email"])
		}
	}

	res, err := c.Erase(ctx, req)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.Erased != sum(wantErased) || res.Masked != sum(wantMasked) || res.Retained != sum(wantRetained) || res.Pending {
		t.Errorf("Erase: want erased %d masked %d retained %d, got %+v", sum(wantErased), sum(wantMasked), sum(wantRetained), res)
	}
	sameCounts(t, "retained locations", wantRetained, res.RetainedLocations)
	for _, l := range res.RetainedLocations {
		if l.Reason != retainReason {
			t.Errorf("retained location %s has reason %q", l.Location, l.Reason)
		}
	}

	after := d.snapshot(t)
	// Deleted: exactly the subject's rows; everything else untouched.
	sameRows(t, "users", without(before["users"], subjectRows["users"]...), after["users"])
	sameRows(t, "sessions", without(before["sessions"], 1, 2), after["sessions"])
	sameRows(t, "invoices", before["invoices"], after["invoices"])
	// Masked: the subject's masked columns rewritten, their other columns and bystanders kept.
	sameRows(t, "profiles (bystanders)", without(before["profiles"], 1, 2), without(after["profiles"], 1, 2))
	sameRows(t, "newsletter (bystanders)", without(before["newsletter"], 1), without(after["newsletter"], 1))
	if got := d.value(t, "profiles", "email", 1); got != expectedHash(subjectEmail) {
		t.Errorf("profiles 1 email: want salted hash %s, got %#v", expectedHash(subjectEmail), got)
	}
	if got := d.value(t, "profiles", "display_name", 1); got != privacyv1alpha1.RedactedMarker {
		t.Errorf("profiles 1 display_name: want the marker, got %#v", got)
	}
	if got := d.value(t, "profiles", "bio", 1); got != nil {
		t.Errorf("profiles 1 bio: want NULL, got %#v", got)
	}
	if got := d.value(t, "profiles", "email", 2); got != nil {
		t.Errorf("profiles 2 email: a NULL is already masked and must stay NULL, got %#v", got)
	}
	if got := d.value(t, "profiles", "display_name", 2); got != privacyv1alpha1.RedactedMarker {
		t.Errorf("profiles 2 display_name: want the marker, got %#v", got)
	}
	for _, id := range []int64{1, 2} {
		for _, c := range []string{"id", "user_id", "token"} {
			if before["profiles"][id][c] != after["profiles"][id][c] {
				t.Errorf("profiles %d: unmasked column %s changed", id, c)
			}
		}
	}
	if got := d.value(t, "newsletter", "email", 1); got != expectedHash(subjectEmail) {
		t.Errorf("newsletter 1 email: want salted hash, got %#v", got)
	}
	if got := d.value(t, "newsletter", "name", 1); got != nil {
		t.Errorf("newsletter 1 name: want NULL, got %#v", got)
	}

	v, err = c.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify after: %v", err)
	}
	if v.Remaining != 0 || len(v.RemainingLocations) != 0 {
		t.Errorf("Verify after erase: remaining %d %v", v.Remaining, v.RemainingLocations)
	}
	sameCounts(t, "retained after erase", wantRetained, v.RetainedLocations)
	if v.Retained != sum(wantRetained) || v.RetainedLocations[0].Reason != retainReason {
		t.Errorf("Verify after erase: retained %d %v", v.Retained, v.RetainedLocations)
	}

	// Idempotent: nothing left to do, same data.
	again, err := c.Erase(ctx, req)
	if err != nil {
		t.Fatalf("second Erase: %v", err)
	}
	if again.Erased != 0 || again.Masked != 0 || again.Retained != sum(wantRetained) {
		t.Errorf("second Erase: want zero erased and masked, got %+v", again)
	}
	final := d.snapshot(t)
	for _, table := range fixtureTables {
		sameRows(t, table+" (second erase)", after[table], final[table])
	}

	// Collect after: masked rows still belong to the subject (matched by user_id), masked.
	col, err = c.Collect(ctx, req)
	if err != nil {
		t.Fatalf("Collect after: %v", err)
	}
	checkCollected(t, col, map[string][]int64{"profiles": {1, 2}, "invoices": {1, 2}})
	for _, r := range col.Records {
		if r.Location == "profiles" && jsonID(t, r) == 1 {
			if r.Data["email"] != expectedHash(subjectEmail) || r.Data["bio"] != nil || r.Data["display_name"] != privacyv1alpha1.RedactedMarker {
				t.Errorf("collected masked row: %v", r.Data)
			}
		}
	}
	if _, err := json.Marshal(col); err != nil {
		t.Errorf("collection does not encode to JSON: %v", err)
	}
}

func jsonID(t *testing.T, r connector.Record) int64 {
	t.Helper()
	switch x := r.Data["id"].(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	t.Fatalf("record %s: id %#v is not an integer", r.Location, r.Data["id"])
	return 0
}

func checkCollected(t *testing.T, col *connector.Collection, want map[string][]int64) {
	t.Helper()
	got := map[string][]int64{}
	for _, r := range col.Records {
		got[r.Location] = append(got[r.Location], jsonID(t, r))
	}
	for _, v := range got {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	}
	if len(got) != len(want) {
		t.Fatalf("collected %v, want %v", got, want)
	}
	for loc, w := range want {
		if len(got[loc]) != len(w) {
			t.Fatalf("collected %v, want %v", got, want)
		}
		for i := range w {
			if got[loc][i] != w[i] {
				t.Fatalf("collected %v, want %v", got, want)
			}
		}
	}
}

func (h Harness) testDryRun(t *testing.T) {
	d, c := h.fixture(t)
	before := d.snapshot(t)
	res, err := c.Erase(ctxFor(t), connector.Request{ID: "dry", Identifiers: subject(), DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if res.Erased != sum(wantErased) || res.Masked != sum(wantMasked) || res.Retained != sum(wantRetained) {
		t.Errorf("dry run counts: %+v", res)
	}
	after := d.snapshot(t)
	for _, table := range fixtureTables {
		sameRows(t, table+" (dry run)", before[table], after[table])
	}
}

func (h Harness) testDeepVerify(t *testing.T) {
	d, c := h.fixture(t)
	ctx := ctxFor(t)
	req := connector.Request{ID: "deep", Identifiers: subject()}
	if _, err := c.Erase(ctx, req); err != nil {
		t.Fatalf("Erase: %v", err)
	}
	// A copy nobody mapped: the subject's phone in a bystander's profile token.
	d.exec(t, "UPDATE profiles SET token = "+h.Dialect.Placeholder(1)+" WHERE id = 3", "call "+subjectPhone+" later")

	plain, err := c.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if plain.Remaining != 0 {
		t.Fatalf("Verify without deep: remaining %v", plain.RemainingLocations)
	}
	deep, err := c.Verify(ctx, connector.Request{ID: "deep", Identifiers: subject(), Deep: true})
	if err != nil {
		t.Fatalf("deep Verify: %v", err)
	}
	want := map[string]int64{
		"users (deep: notes)":    1, // "forwarded from alice@..." on Bob's row
		"users (deep: email)":    1, // "xalice@..." contains the address
		"users (deep: phone)":    1, // the phone with a digit appended
		"profiles (deep: email)": 1, // another user's row holding the address
		"profiles (deep: token)": 1,
	}
	sameCounts(t, "deep remaining", want, deep.RemainingLocations)
	if deep.Remaining != sum(want) {
		t.Errorf("deep remaining %d, want %d", deep.Remaining, sum(want))
	}
	if deep.Retained != sum(wantRetained) {
		t.Errorf("deep retained %d: retain tables are never searched as remaining", deep.Retained)
	}
}

func (h Harness) testMapping(t *testing.T) {
	d := h.newDB(t)
	d.createFixture(t)
	d.seedFixture(t)
	before := d.snapshot(t)
	ctx := ctxFor(t)
	req := connector.Request{ID: "m", Identifiers: subject()}

	cases := []struct {
		name   string
		mutate func(*privacyv1alpha1.DataStoreSpec)
		names  []string
	}{
		{"missing table", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[0].Name = "no_such_table" }, []string{"no_such_table"}},
		{"missing match column", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[1].Match[1].Column = "no_such_column" }, []string{"sessions", "no_such_column"}},
		{"missing mask column", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[2].Mask[0].Column = "ghost" }, []string{"profiles", "ghost"}},
		{"hash on an integer column", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[2].Mask[0].Column = "id" }, []string{"profiles", "id", "hash"}},
		{"nullify a NOT NULL column", func(s *privacyv1alpha1.DataStoreSpec) { s.Tables[2].Mask[2].Column = "user_id" }, []string{"profiles", "user_id", "NOT NULL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := fixtureSpec(h.Dialect.Type())
			tc.mutate(spec)
			c := h.client(t, d.secret, spec, sqlstore.Options{})
			_, err := c.Check(ctx)
			wantKind(t, err, connector.KindMapping, req.Identifiers)
			for _, n := range tc.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("Check error does not name %q: %v", n, err)
				}
			}
			_, err = c.Erase(ctx, req)
			wantKind(t, err, connector.KindMapping, req.Identifiers)
			_, err = c.Verify(ctx, req)
			wantKind(t, err, connector.KindMapping, req.Identifiers)
			_, err = c.Collect(ctx, req)
			wantKind(t, err, connector.KindMapping, req.Identifiers)
		})
	}
	after := d.snapshot(t)
	for _, table := range fixtureTables {
		sameRows(t, table+" (bad mappings)", before[table], after[table])
	}

	t.Run("invalid spec", func(t *testing.T) {
		spec := fixtureSpec(h.Dialect.Type())
		// A table may be listed more than once, but not twice the same way.
		spec.Tables[1] = spec.Tables[0]
		_, err := h.tryClient(t, d.secret, spec, sqlstore.Options{})
		wantKind(t, err, connector.KindMapping, nil)
	})
}

func (h Harness) testConnection(t *testing.T) {
	spec := fixtureSpec(h.Dialect.Type())
	for _, secret := range []string{"", "   ", h.Malformed} {
		_, err := h.tryClient(t, secret, spec, sqlstore.Options{})
		wantKind(t, err, connector.KindInvalid, nil)
	}
	_, err := h.tryClient(t, h.Unreachable(t), spec, sqlstore.Options{})
	wantKind(t, err, connector.KindUnavailable, nil)
	if h.WrongPassword != nil {
		d := h.newDB(t)
		_, err := h.tryClient(t, h.WrongPassword(d.secret), spec, sqlstore.Options{})
		wantKind(t, err, connector.KindAuth, nil)
	}
	t.Run("hash needs a salt", func(t *testing.T) {
		d := h.newDB(t)
		_, err := sqlstore.NewProvider(h.Dialect, sqlstore.Options{}).NewClient(ctxFor(t),
			connector.Config{Spec: spec, Secret: []byte(d.secret)})
		wantKind(t, err, connector.KindInvalid, nil)
	})
}

// sessionsOnly maps just the sessions table.
func sessionsOnly(typ privacyv1alpha1.StoreType) *privacyv1alpha1.DataStoreSpec {
	spec := fixtureSpec(typ)
	spec.Tables = spec.Tables[1:2]
	return spec
}

// seedManySessions gives the subject n more sessions (ids 100...) among bystanders.
func (d *db) seedManySessions(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		d.insert(t, "sessions", []string{"id", "user_id", "email"}, []any{100 + i, 42, nil})
		d.insert(t, "sessions", []string{"id", "user_id", "email"}, []any{1000 + i, 43, subjectEmail + ".org"})
	}
}

func (h Harness) testBatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sqlstore.Options
	}{
		{"one transaction, small statements", sqlstore.Options{BatchSize: 3}},
		{"a transaction per batch", sqlstore.Options{BatchSize: 3, MaxAtomicRows: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := h.newDB(t)
			d.createFixture(t)
			d.seedFixture(t)
			d.seedManySessions(t, 20)
			before := d.snapshot(t)
			c := h.client(t, d.secret, fixtureSpec(h.Dialect.Type()), tc.opts)
			ctx := ctxFor(t)
			req := connector.Request{ID: "b", Identifiers: subject()}
			res, err := c.Erase(ctx, req)
			if err != nil {
				t.Fatalf("Erase: %v", err)
			}
			if res.Erased != sum(wantErased)+20 || res.Masked != sum(wantMasked) {
				t.Errorf("Erase: %+v", res)
			}
			drop := []int64{1, 2}
			for i := int64(0); i < 20; i++ {
				drop = append(drop, 100+i)
			}
			sameRows(t, "sessions", without(before["sessions"], drop...), d.rows(t, "sessions"))
			sameRows(t, "users", without(before["users"], subjectRows["users"]...), d.rows(t, "users"))
			v, err := c.Verify(ctx, req)
			if err != nil || v.Remaining != 0 {
				t.Fatalf("Verify: %v %+v", err, v)
			}
		})
	}
}

// testInterruptedAtomic cancels an erasure after its first statement: the single transaction
// must leave the store exactly as it was.
func (h Harness) testInterruptedAtomic(t *testing.T) {
	d := h.newDB(t)
	d.createFixture(t)
	d.seedFixture(t)
	before := d.snapshot(t)
	ctx, cancel := context.WithCancel(ctxFor(t))
	c := h.client(t, d.secret, fixtureSpec(h.Dialect.Type()), sqlstore.Options{AfterBatch: func(string) { cancel() }})
	_, err := c.Erase(ctx, connector.Request{ID: "i", Identifiers: subject()})
	wantKind(t, err, connector.KindUnavailable, subject())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("want the cancellation recognisable, got %v", err)
	}
	after := d.snapshot(t)
	for _, table := range fixtureTables {
		sameRows(t, table+" (interrupted)", before[table], after[table])
	}
	res, err := c.Erase(ctxFor(t), connector.Request{ID: "i", Identifiers: subject()})
	if err != nil || res.Erased != sum(wantErased) || res.Masked != sum(wantMasked) {
		t.Fatalf("Erase after interruption: %v %+v", err, res)
	}
}

func (h Harness) testOutage(t *testing.T) {
	d, c := h.fixture(t)
	req := connector.Request{ID: "o", Identifiers: subject()}
	if err := h.Server.Stop(); err != nil {
		t.Fatalf("stop server: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = h.Server.Start(context.Background())
		}
	})
	_, err := c.Erase(ctxFor(t), req)
	wantKind(t, err, connector.KindUnavailable, req.Identifiers)
	_, err = c.Verify(ctxFor(t), req)
	wantKind(t, err, connector.KindUnavailable, req.Identifiers)
	_, err = c.Check(ctxFor(t))
	wantKind(t, err, connector.KindUnavailable, nil)
	if err := h.Server.Start(ctxFor(t)); err != nil {
		t.Fatalf("start server: %v", err)
	}
	restarted = true
	res, err := c.Erase(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Erase after restart: %v", err)
	}
	if res.Erased != sum(wantErased) || res.Masked != sum(wantMasked) {
		t.Errorf("Erase after restart: %+v", res)
	}
	d2 := h.reopen(t, d)
	if got := d2.rows(t, "users"); len(got) != 4 {
		t.Errorf("users after erase: %d rows, want 4", len(got))
	}
	v, err := c.Verify(ctxFor(t), req)
	if err != nil || v.Remaining != 0 {
		t.Fatalf("Verify after restart: %v %+v", err, v)
	}
}

// reopen gives a fresh raw pool: the old one's connections died with the server.
func (h Harness) reopen(t *testing.T, d *db) *db {
	t.Helper()
	raw, err := h.Dialect.Open([]byte(d.secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return &db{h: h, secret: d.secret, raw: raw}
}

// testOutageMidBatches stops the server after the first committed batch: the committed batch
// stays done, and the next erasure finishes the rest.
func (h Harness) testOutageMidBatches(t *testing.T) {
	d := h.newDB(t)
	d.createFixture(t)
	d.seedFixture(t)
	d.seedManySessions(t, 9)
	before := d.rows(t, "sessions")
	armed, stopped := true, false
	t.Cleanup(func() {
		if stopped {
			_ = h.Server.Start(context.Background())
		}
	})
	opts := sqlstore.Options{BatchSize: 4, MaxAtomicRows: 5, AfterBatch: func(string) {
		if armed {
			armed, stopped = false, true
			if err := h.Server.Stop(); err != nil {
				t.Errorf("stop server: %v", err)
			}
		}
	}}
	c := h.client(t, d.secret, sessionsOnly(h.Dialect.Type()), opts)
	req := connector.Request{ID: "mb", Identifiers: subject()}
	_, err := c.Erase(ctxFor(t), req)
	wantKind(t, err, connector.KindUnavailable, req.Identifiers)
	if err := h.Server.Start(ctxFor(t)); err != nil {
		t.Fatalf("start server: %v", err)
	}
	stopped = false
	d2 := h.reopen(t, d)
	mid := d2.rows(t, "sessions")
	if gone := len(before) - len(mid); gone != 4 {
		t.Fatalf("after the outage %d rows are gone, want the first batch of 4", gone)
	}
	res, err := c.Erase(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Erase after restart: %v", err)
	}
	if res.Erased != 2+9-4 {
		t.Errorf("Erase after restart erased %d, want %d", res.Erased, 2+9-4)
	}
	drop := []int64{1, 2}
	for i := int64(0); i < 9; i++ {
		drop = append(drop, 100+i)
	}
	sameRows(t, "sessions", without(before, drop...), d2.rows(t, "sessions"))
}

// testOutageMidTransaction stops the server inside the single erasure transaction: nothing
// may be changed.
func (h Harness) testOutageMidTransaction(t *testing.T) {
	d := h.newDB(t)
	d.createFixture(t)
	d.seedFixture(t)
	before := d.snapshot(t)
	armed, stopped := true, false
	t.Cleanup(func() {
		if stopped {
			_ = h.Server.Start(context.Background())
		}
	})
	opts := sqlstore.Options{AfterBatch: func(string) {
		if armed {
			armed, stopped = false, true
			if err := h.Server.Stop(); err != nil {
				t.Errorf("stop server: %v", err)
			}
		}
	}}
	c := h.client(t, d.secret, fixtureSpec(h.Dialect.Type()), opts)
	req := connector.Request{ID: "mt", Identifiers: subject()}
	_, err := c.Erase(ctxFor(t), req)
	wantKind(t, err, connector.KindUnavailable, req.Identifiers)
	if err := h.Server.Start(ctxFor(t)); err != nil {
		t.Fatalf("start server: %v", err)
	}
	stopped = false
	d2 := h.reopen(t, d)
	after := d2.snapshot(t)
	for _, table := range fixtureTables {
		sameRows(t, table+" (outage mid-transaction)", before[table], after[table])
	}
	res, err := c.Erase(ctxFor(t), req)
	if err != nil || res.Erased != sum(wantErased) || res.Masked != sum(wantMasked) {
		t.Fatalf("Erase after restart: %v %+v", err, res)
	}
}

func (h Harness) testSchemaQualified(t *testing.T) {
	d := h.newDB(t)
	schema := h.NewSchema(t, d.raw)
	qualified := schema + ".accounts"
	d.exec(t, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email VARCHAR(255))")
	d.exec(t, "CREATE TABLE "+qualified+" (id INTEGER PRIMARY KEY, email VARCHAR(255))")
	d.insert(t, "accounts", []string{"id", "email"}, []any{1, subjectEmail}, []any{2, "bob@example.com"})
	d.insert(t, qualified, []string{"id", "email"}, []any{1, subjectEmail}, []any{2, "bob@example.com"})
	spec := fixtureSpec(h.Dialect.Type())
	spec.Tables = []privacyv1alpha1.TableMapping{{Name: qualified, Action: privacyv1alpha1.ActionDelete,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}}}}
	c := h.client(t, d.secret, spec, sqlstore.Options{})
	ctx := ctxFor(t)
	if _, err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	req := connector.Request{ID: "s", Identifiers: subject()}
	col, err := c.Collect(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	checkCollected(t, col, map[string][]int64{qualified: {1}})
	res, err := c.Erase(ctx, req)
	if err != nil || res.Erased != 1 {
		t.Fatalf("Erase: %v %+v", err, res)
	}
	if got := ids(d.rows(t, qualified)); len(got) != 1 || got[0] != 2 {
		t.Errorf("%s rows left: %v, want [2]", qualified, got)
	}
	if got := ids(d.rows(t, "accounts")); len(got) != 2 {
		t.Errorf("the unqualified accounts table was touched: %v", got)
	}
	v, err := c.Verify(ctx, req)
	if err != nil || v.Remaining != 0 {
		t.Fatalf("Verify: %v %+v", err, v)
	}
}

// testMaskState checks the rule that makes mask idempotent: a column already in its masked state
// (NULL, the marker, 64 lower-case hex digits) is left as it is, anything else is masked.
func (h Harness) testMaskState(t *testing.T) {
	d := h.newDB(t)
	d.exec(t, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, user_id INTEGER, digest VARCHAR(255), label VARCHAR(255))")
	hashed := expectedHash("already")
	upper := strings.ToUpper(hashed)
	notHex := strings.Repeat("g", 64)
	d.insert(t, "accounts", []string{"id", "user_id", "digest", "label"},
		[]any{1, 42, hashed, privacyv1alpha1.RedactedMarker}, // fully masked already
		[]any{2, 42, upper, privacyv1alpha1.RedactedMarker},  // upper-case hex is not what hash writes
		[]any{3, 42, notHex, nil},                            // 64 characters, not hex
		[]any{4, 42, nil, "[redacted]"},                      // not the marker
		[]any{5, 42, hashed + "0", privacyv1alpha1.RedactedMarker},
		[]any{6, 7, "bystander", "Bystander"},
	)
	spec := fixtureSpec(h.Dialect.Type())
	spec.Tables = []privacyv1alpha1.TableMapping{{Name: "accounts", Action: privacyv1alpha1.ActionMask,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "user_id", Identifier: "userId"}},
		Mask: []privacyv1alpha1.ColumnMask{
			{Column: "digest", Strategy: privacyv1alpha1.MaskHash},
			{Column: "label", Strategy: privacyv1alpha1.MaskRedact},
		}}}
	c := h.client(t, d.secret, spec, sqlstore.Options{})
	ctx := ctxFor(t)
	req := connector.Request{ID: "ms", Identifiers: subject()}
	before := d.rows(t, "accounts")

	v, err := c.Verify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Remaining != 4 {
		t.Errorf("Verify before: remaining %d, want 4 (rows 2-5)", v.Remaining)
	}
	res, err := c.Erase(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Masked != 4 {
		t.Errorf("Erase masked %d, want 4", res.Masked)
	}
	sameRows(t, "accounts (already masked, bystander)", map[int64]map[string]string{1: before[1], 6: before[6]},
		map[int64]map[string]string{1: d.rows(t, "accounts")[1], 6: d.rows(t, "accounts")[6]})
	for id, want := range map[int64]any{2: expectedHash(upper), 3: expectedHash(notHex), 4: nil, 5: expectedHash(hashed + "0")} {
		if got := d.value(t, "accounts", "digest", id); got != want {
			t.Errorf("row %d digest = %#v, want %#v", id, got, want)
		}
		wantLabel := any(privacyv1alpha1.RedactedMarker)
		if id == 3 {
			wantLabel = nil // NULL holds nothing: redact leaves it NULL
		}
		if got := d.value(t, "accounts", "label", id); got != wantLabel {
			t.Errorf("row %d label = %#v, want %#v", id, got, wantLabel)
		}
	}
	v, err = c.Verify(ctx, req)
	if err != nil || v.Remaining != 0 {
		t.Fatalf("Verify after: %v %+v", err, v)
	}
	again, err := c.Erase(ctx, req)
	if err != nil || again.Masked != 0 {
		t.Fatalf("second Erase: %v %+v", err, again)
	}
}

// testHashUnicode checks that the database hashes the UTF-8 bytes of non-ASCII text, as Go does.
func (h Harness) testHashUnicode(t *testing.T) {
	d := h.newDB(t)
	d.exec(t, "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email VARCHAR(255), name VARCHAR(255))")
	name := "Zoë Ångström 日本 🙂"
	d.insert(t, "contacts", []string{"id", "email", "name"}, []any{1, subjectEmail, name})
	spec := fixtureSpec(h.Dialect.Type())
	spec.Tables = []privacyv1alpha1.TableMapping{{Name: "contacts", Action: privacyv1alpha1.ActionMask,
		Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
		Mask:  []privacyv1alpha1.ColumnMask{{Column: "name", Strategy: privacyv1alpha1.MaskHash}}}}
	c := h.client(t, d.secret, spec, sqlstore.Options{})
	if _, err := c.Erase(ctxFor(t), connector.Request{ID: "hu", Identifiers: subject()}); err != nil {
		t.Fatal(err)
	}
	if got := d.value(t, "contacts", "name", 1); got != expectedHash(name) {
		t.Errorf("hash of %q = %#v, want %s", name, got, expectedHash(name))
	}
}

// testConcurrentReads uses one client from many goroutines, more than its pool has connections.
func (h Harness) testConcurrentReads(t *testing.T) {
	_, c := h.fixture(t)
	ctx := ctxFor(t)
	req := connector.Request{ID: "c", Identifiers: subject(), Deep: true}
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := 0; i < 8; i++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			v, err := c.Verify(ctx, req)
			if err == nil && v.Retained != sum(wantRetained) {
				err = errors.New("verify saw a different store")
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			col, err := c.Collect(ctx, req)
			if err == nil && len(col.Records) != len(subjectRecords()) {
				err = errors.New("collect saw a different store")
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := c.Erase(ctx, connector.Request{ID: "c", Identifiers: subject(), DryRun: true})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// testSchemaChange renames a mapped column under a client that has the catalog cached: the
// operation that trips on it fails, the next one names the missing column as a mapping problem
// (the catalog was read again), and once the column is back the erasure completes with the right
// counts.
func (h Harness) testSchemaChange(t *testing.T) {
	d, c := h.fixture(t)
	ctx := ctxFor(t)
	req := connector.Request{ID: "schema", Identifiers: subject()}
	if _, err := c.Verify(ctx, req); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	d.exec(t, "ALTER TABLE newsletter RENAME COLUMN name TO full_name")
	if _, err := c.Erase(ctx, req); err == nil {
		t.Fatal("Erase succeeded with a mapped column renamed")
	} else {
		noValues(t, err.Error(), req.Identifiers)
	}
	_, err := c.Erase(ctx, req)
	wantKind(t, err, connector.KindMapping, req.Identifiers)
	if !strings.Contains(err.Error(), "newsletter") || !strings.Contains(err.Error(), "name") {
		t.Errorf("the second Erase does not name the renamed column: %v", err)
	}
	d.exec(t, "ALTER TABLE newsletter RENAME COLUMN full_name TO name")
	res, err := c.Erase(ctx, req)
	if err != nil {
		t.Fatalf("Erase after the column came back: %v", err)
	}
	// The failed attempt was one transaction (the fixture is below MaxAtomicRows) and rolled back.
	if res.Erased != sum(wantErased) || res.Masked != sum(wantMasked) || res.Retained != sum(wantRetained) {
		t.Errorf("erased %d masked %d retained %d, want %d %d %d", res.Erased, res.Masked, res.Retained,
			sum(wantErased), sum(wantMasked), sum(wantRetained))
	}
	v, err := c.Verify(ctx, req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if v.Remaining != 0 {
		t.Errorf("remaining after erasure: %v", v.RemainingLocations)
	}
}
