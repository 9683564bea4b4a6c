package sqltest

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
)

// statementLog counts the statements a client sends, by their first word.
type statementLog struct {
	mu    sync.Mutex
	verbs map[string]int
	total int
}

var firstWord = regexp.MustCompile(`^\s*([A-Za-z]+)`)

func (l *statementLog) record(query string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	verb := "?"
	if m := firstWord.FindStringSubmatch(query); m != nil {
		verb = strings.ToUpper(m[1])
	}
	l.verbs[verb]++
	l.total++
}

// take returns the counts so far and starts again.
func (l *statementLog) take() (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	verbs, total := l.verbs, l.total
	l.verbs, l.total = map[string]int{}, 0
	return verbs, total
}

// Statements per hop, not per value or batch: the subject of the shop gets many more orders,
// items and logins than a batch holds, and each operation must still send a number of statements
// that depends on the mapping only. Erase deletes each table with one statement inside its single
// transaction; derive reads each table once per hop; verify counts each table once.
func (h Harness) testStatementsPerErase(t *testing.T, enforceKeys func(string) string) {
	const extraOrders, itemsPerOrder, extraLogins = 40, 3, 30
	d := h.newDB(t)
	d.createShop(t, true)
	for i := range extraOrders {
		order := 1000 + i
		d.insert(t, "orders", []string{"id", "customer_id", "shipping_address_id", "total"}, []any{order, 1, 5, 10})
		for k := range itemsPerOrder {
			d.insert(t, "order_item", []string{"id", "order_id", "sku"}, []any{10000 + itemsPerOrder*i + k, order, "X"})
		}
	}
	for i := range extraLogins {
		d.insert(t, "login", []string{"id", "customer_id", "ip"}, []any{1000 + i, 1, "10.1.0.1"})
	}
	before := d.shopSnapshot(t)
	log := &statementLog{verbs: map[string]int{}}
	// Batches of 5 rows: the old per-batch erasure sent 9 statements for the orders alone.
	c := h.client(t, enforceKeys(d.secret), shopSpec(h.Dialect.Type()), sqlstore.Options{BatchSize: 5, OnStatement: log.record})

	// The first derivation reads the catalog; the counts below are of work with it cached, as a
	// long-lived client does it.
	derive(t, c, connector.Request{ID: "s1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
	log.take()
	req := derive(t, c, connector.Request{ID: "s1", Identifiers: connector.Identifiers{"email": shopSubjectEmail}})
	if n := len(req.Values["orderId"]); n != 3+extraOrders {
		t.Fatalf("derived %d order ids, want %d", n, 3+extraOrders)
	}
	deriveVerbs, deriveTotal := log.take()

	dry := req
	dry.DryRun = true
	plan, err := c.Erase(ctxFor(t), dry)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	planVerbs, planTotal := log.take()
	res, err := c.Erase(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	eraseVerbs, eraseTotal := log.take()
	v, err := c.Verify(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	verifyVerbs, verifyTotal := log.take()
	t.Logf("statements: derive %d %v, plan %d %v, erase %d %v, verify %d %v",
		deriveTotal, deriveVerbs, planTotal, planVerbs, eraseTotal, eraseVerbs, verifyTotal, verifyVerbs)

	wantErased := int64(19 + extraOrders*(1+itemsPerOrder) + extraLogins)
	if res.Erased != wantErased || res.Masked != 1 || res.Shared != 2 || plan.Erased != wantErased || plan.Masked != 1 {
		t.Errorf("erase %+v, plan %+v: want %d erased, 1 masked, 2 shared", res, plan, wantErased)
	}
	if v.Remaining != 0 || v.Shared != 2 {
		t.Errorf("verify %+v: want nothing remaining, 2 shared", v)
	}
	after := d.shopSnapshot(t)
	sameRows(t, "customer", without(before["customer"], 1), after["customer"])
	sameRows(t, "address", without(before["address"], 1, 5), after["address"])
	if n := len(after["orders"]) + len(after["order_item"]) + len(after["login"]); n != 2+2+1 {
		t.Errorf("%d rows of orders, items and logins left, want Bob's and Carol's 5", n)
	}

	// Seven tables lose the subject's rows, one is masked: one statement each.
	if eraseVerbs["DELETE"] != 7 || eraseVerbs["UPDATE"] != 1 {
		t.Errorf("erase sent %d DELETE and %d UPDATE statements, want 7 and 1 (one per table)", eraseVerbs["DELETE"], eraseVerbs["UPDATE"])
	}
	if planVerbs["DELETE"]+planVerbs["UPDATE"] != 0 {
		t.Errorf("the dry run changed something: %v", planVerbs)
	}
	// Bounds that depend on the eight mappings only: a statement per derived value (43 orders)
	// or per batch breaks them. Derive runs two rounds here (the second without the shared
	// addresses), each reading three tables and asking five columns about shared values.
	for _, c := range []struct {
		phase      string
		total, max int
	}{{"derive", deriveTotal, 24}, {"plan", planTotal, 16}, {"erase", eraseTotal, 24}, {"verify", verifyTotal, 16}} {
		if c.total > c.max {
			t.Errorf("%s sent %d statements, want at most %d", c.phase, c.total, c.max)
		}
	}
}
