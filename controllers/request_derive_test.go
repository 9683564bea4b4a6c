package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	fakeconnector "github.com/dsr-operator/dsr-operator/internal/connector/fake"
	"github.com/dsr-operator/dsr-operator/internal/stores"
	"github.com/dsr-operator/dsr-operator/internal/testbuilders"
)

// scriptedDeriver derives by rule: every value of an identifier it is given yields the values the
// rule lists (a tiny database), followed to the end as a store's Derive does. It records what it
// was asked with.
type scriptedDeriver struct {
	*fakeconnector.Client
	// rules: identifier -> value -> derived identifier -> values.
	rules map[string]map[string]map[string][]string
	// shares are values it finds held by someone else too, by identifier.
	shares connector.Values
	mu     sync.Mutex
	asked  []connector.Values
}

func (d *scriptedDeriver) Derive(_ context.Context, req connector.Request) (*connector.Derivation, error) {
	given := req.AllValues()
	d.mu.Lock()
	d.asked = append(d.asked, given.Clone())
	d.mu.Unlock()
	known := given.Clone()
	out := connector.Values{}
	fresh := given
	for fresh.Count() > 0 {
		next := connector.Values{}
		for name, vals := range fresh {
			for _, v := range vals {
				for to, derived := range d.rules[name][v] {
					for _, x := range derived {
						if known.Add(to, x) > 0 {
							next.Add(to, x)
						}
					}
				}
			}
		}
		out.Merge(next)
		fresh = next
	}
	shared := req.Shared.Clone()
	if shared == nil {
		shared = connector.Values{}
	}
	shared.Merge(d.shares)
	res := &connector.Derivation{Values: out, Shared: shared}
	if req.Plan {
		values := req.Values.Clone()
		values.Merge(out)
		for name := range values {
			values[name] = slices.DeleteFunc(values[name], func(v string) bool { return shared.Has(name, v) })
		}
		res.Plan = &connector.DerivedPlan{Result: &connector.EraseResult{Erased: int64(values.Count())}, Values: values, Shared: shared.Clone()}
	}
	return res, nil
}

func table(name string, match, provides []string) privacyv1alpha1.TableMapping {
	t := privacyv1alpha1.TableMapping{Name: name, Action: privacyv1alpha1.ActionDelete}
	for _, m := range match {
		t.Match = append(t.Match, privacyv1alpha1.ColumnMatch{Column: m, Identifier: m})
	}
	for _, p := range provides {
		t.Provides = append(t.Provides, privacyv1alpha1.ColumnProvide{Identifier: p, Column: p})
	}
	return t
}

type deriveCase struct {
	scope   *deletionScope
	clients map[string]*scriptedDeriver
}

func newDeriveCase(t *testing.T, objs []client.Object, specs map[string][]privacyv1alpha1.TableMapping, rules map[string]map[string]map[string]map[string][]string) *deriveCase {
	t.Helper()
	dr := testbuilders.DeletionRequest("shop", "jane", "jane-ids")
	dr.UID = "uid-1"
	deps := logicDeps(t, clocktesting.NewFakePassiveClock(logicNow), append(objs, dr)...)
	c := &deriveCase{clients: map[string]*scriptedDeriver{}}
	c.scope = deletionScopeFor(t, deps, dr, nil)
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c.scope.acceptedStores = append(c.scope.acceptedStores, stores.Store{
			Ref:  stores.Ref{Kind: privacyv1alpha1.KindDataStore, Name: name},
			Spec: &privacyv1alpha1.DataStoreSpec{Type: "postgres", Tables: specs[name]}})
		c.clients[name] = &scriptedDeriver{Client: fakeconnector.NewClient(), rules: rules[name]}
	}
	c.scope.planWhileDeriving = true
	c.scope.clientOverride = func(_ privacyv1alpha1.StoreKind, name string) (connector.Client, error) {
		return c.clients[name], nil
	}
	return c
}

func (c *deriveCase) derive(t *testing.T) {
	t.Helper()
	proceed, err := c.scope.deriveLinked(context.Background(), labelDeletionRequest)
	if err != nil || !proceed {
		t.Fatalf("deriveLinked: %v, proceed %v (refusal %+v)", err, proceed, c.scope.facts.refusal)
	}
}

func (c *deriveCase) secret(t *testing.T) map[string][]string {
	t.Helper()
	var s corev1.Secret
	if err := c.scope.deps.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "jane-derived"}, &s); err != nil {
		t.Fatal(err)
	}
	var values map[string][]string
	if err := json.Unmarshal(s.Data[derivedValuesKey], &values); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		slices.Sort(v)
	}
	return values
}

// Two stores with the same shape and the same ids derive at the same time, and neither is asked
// again when the other only found what it found itself.
func TestDeriveWavesAskEachStoreOnceWhenNothingNewArrives(t *testing.T) {
	shop := []privacyv1alpha1.TableMapping{table("customers", []string{"email"}, []string{"customerId"}),
		table("orders", []string{"customerId"}, []string{"orderId"}), table("order_item", []string{"orderId"}, nil)}
	rules := map[string]map[string]map[string][]string{
		"email": {"jane@example.com": {"customerId": {"7"}}}, "customerId": {"7": {"orderId": {"70", "71"}}}}
	c := newDeriveCase(t, nil, map[string][]privacyv1alpha1.TableMapping{"pg": shop, "my": shop},
		map[string]map[string]map[string]map[string][]string{"pg": rules, "my": rules})
	c.derive(t)
	for name, cl := range c.clients {
		if len(cl.asked) != 1 {
			t.Errorf("store %s was asked %d times, want once", name, len(cl.asked))
		}
	}
	if got := c.secret(t); !slices.Equal(got["orderId"], []string{"70", "71"}) || !slices.Equal(got["customerId"], []string{"7"}) {
		t.Fatalf("derived %v", got)
	}
}

// A value that only the other store knows is followed in the store that was asked before.
func TestDeriveWavesFollowValuesAcrossStores(t *testing.T) {
	specs := map[string][]privacyv1alpha1.TableMapping{
		"a-crm": {table("customer", []string{"email"}, []string{"customerId"}),
			table("refunds", []string{"invoiceId"}, []string{"refundId"})},
		"b-billing": {table("invoices", []string{"customerId"}, []string{"invoiceId"})},
	}
	rules := map[string]map[string]map[string]map[string][]string{
		"a-crm":     {"email": {"jane@example.com": {"customerId": {"7"}}}, "invoiceId": {"i1": {"refundId": {"r1"}}}},
		"b-billing": {"customerId": {"7": {"invoiceId": {"i1"}}}},
	}
	c := newDeriveCase(t, nil, specs, rules)
	c.derive(t)
	if n := len(c.clients["a-crm"].asked); n != 2 {
		t.Fatalf("crm asked %d times, want twice (before and after billing)", n)
	}
	if !c.clients["b-billing"].asked[0].Has("customerId", "7") {
		t.Fatal("billing was asked before crm's customer id was known")
	}
	got := c.secret(t)
	if !slices.Equal(got["refundId"], []string{"r1"}) || !slices.Equal(got["invoiceId"], []string{"i1"}) {
		t.Fatalf("derived %v", got)
	}
	if d := c.scope.derivedStatus(0); len(d) != 2 || d[0].Identifier != "customerId" || d[1].Identifier != "refundId" || d[1].Values != 1 {
		t.Fatalf("crm's status %+v", d)
	}
}

// After a crash mid-erasure the customer row is gone: the values the first acceptance kept are
// followed again, and the Secret keeps them.
func TestDeriveFollowsWhatAnEarlierAcceptanceKept(t *testing.T) {
	dr := testbuilders.DeletionRequest("shop", "jane", "jane-ids")
	dr.UID = "uid-1"
	earlier, _ := json.Marshal(map[string][]string{"customerId": {"7"}, "orderId": {"70"}})
	kept := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "jane-derived",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: privacyv1alpha1.GroupVersion.String(), Kind: "DeletionRequest",
			Name: "jane", UID: "uid-1", Controller: ptr.To(true)}}},
		Data: map[string][]byte{derivedValuesKey: earlier, derivedSharedKey: []byte("{}")}}
	specs := map[string][]privacyv1alpha1.TableMapping{
		"crm":   {table("customers", []string{"email"}, []string{"customerId"}), table("orders", []string{"customerId"}, []string{"orderId"})},
		"cache": {table("carts", []string{"orderId"}, []string{"cartId"})},
	}
	rules := map[string]map[string]map[string]map[string][]string{
		// The customer row is gone; an order row of the subject's is still there.
		"crm":   {"customerId": {"7": {"orderId": {"70", "72"}}}},
		"cache": {"orderId": {"72": {"cartId": {"c9"}}}},
	}
	c := newDeriveCase(t, []client.Object{kept}, specs, rules)
	c.derive(t)
	got := c.secret(t)
	if !slices.Equal(got["orderId"], []string{"70", "72"}) || !slices.Equal(got["customerId"], []string{"7"}) || !slices.Equal(got["cartId"], []string{"c9"}) {
		t.Fatalf("derived %v", got)
	}
}

// A dry run counted while deriving stands only when the values the store matches did not change
// afterwards: here the address the crm counted as the subject's turns out shared.
func TestDerivedPlansStandOnlyForUnchangedValues(t *testing.T) {
	specs := map[string][]privacyv1alpha1.TableMapping{
		"a-crm": {table("customers", []string{"email"}, []string{"addressId"}), table("address_book", []string{"addressId"}, nil)},
		"b-geo": {table("addresses", []string{"addressId"}, []string{"regionId"})},
	}
	rules := map[string]map[string]map[string]map[string][]string{
		"a-crm": {"email": {"jane@example.com": {"addressId": {"5"}}}},
		"b-geo": {"addressId": {"5": {"regionId": {"r1"}}}},
	}
	c := newDeriveCase(t, nil, specs, rules)
	c.clients["b-geo"].shares = connector.Values{"addressId": {"5"}}
	c.derive(t)
	if _, ok := c.scope.derivedPlans[0]; ok {
		t.Fatal("the crm's plan counted address 5 as the subject's, yet it is shared: it must be planned again")
	}
	if res, ok := c.scope.derivedPlans[1]; !ok || res.Erased != 1 {
		t.Fatalf("the geo store's plan %+v should stand", res)
	}

	same := newDeriveCase(t, nil, specs, rules)
	same.derive(t)
	if len(same.scope.derivedPlans) != 2 {
		t.Fatalf("plans %v: with nothing shared both stand", same.scope.derivedPlans)
	}
}
