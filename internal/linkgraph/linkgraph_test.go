package linkgraph

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func node(store, mapping string, match, provides []string) Node {
	return Node{Store: store, Mapping: mapping, Match: match, Provides: provides}
}

// steps renders a plan as "store:id,id" per step.
func steps(p *Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Store+":"+strings.Join(s.Provides, ","))
	}
	return out
}

func TestResolve(t *testing.T) {
	shop := []Node{
		node("crm", "table order_item", []string{"orderId"}, nil),
		node("crm", "table orders", []string{"customerId"}, []string{"orderId"}),
		node("crm", "table customer", []string{"email"}, []string{"addressId", "customerId"}),
		node("crm", "table address", []string{"addressId"}, nil),
		node("cache", "key cart:{customerId}", []string{"customerId"}, nil),
	}
	cases := []struct {
		name      string
		nodes     []Node
		known     []string
		wantSteps []string
		wantErr   string
	}{
		{"shop chain in one store", shop, []string{"email"},
			[]string{"crm:addressId,customerId,orderId"}, ""},
		{"no provides: nothing to derive", []Node{node("crm", "table users", []string{"email"}, nil)},
			[]string{"email"}, nil, ""},
		{"across stores, back and forth", []Node{
			node("billing", "table invoices", []string{"customerId"}, []string{"invoiceId"}),
			node("crm", "table customer", []string{"email"}, []string{"customerId"}),
			node("crm", "table refunds", []string{"invoiceId"}, []string{"refundId"}),
			node("cache", "key refund:{refundId}", []string{"refundId"}, nil),
		}, []string{"email"}, []string{"crm:customerId", "billing:invoiceId", "crm:refundId"}, ""},
		{"a known identifier also provided waits for its provider", []Node{
			node("b", "table sessions", []string{"userId"}, []string{"sessionId"}),
			node("a", "table users", []string{"email"}, []string{"userId"}),
		}, []string{"email", "userId"}, []string{"a:userId", "b:sessionId"}, ""},
		{"unprovided identifier", []Node{
			node("crm", "table customer", []string{"email"}, []string{"customerId"}),
			node("crm", "table orders", []string{"customerID"}, nil),
		}, []string{"email"}, nil, `nothing provides identifier "customerID" (matched by table orders of crm)`},
		{"cycle", []Node{
			node("crm", "table a", []string{"email", "y"}, []string{"x"}),
			node("crm", "table b", []string{"x"}, []string{"y"}),
		}, []string{"email"}, nil, `is derived from itself`},
		{"self cycle", []Node{
			node("crm", "table a", []string{"x"}, []string{"x"}),
		}, []string{"x"}, nil, `identifier "x" is derived from itself: x -> x (through table a of crm)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Resolve(tc.nodes, tc.known)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := steps(plan); !reflect.DeepEqual(got, tc.wantSteps) {
				t.Fatalf("steps %q, want %q", got, tc.wantSteps)
			}
		})
	}
}

func TestResolveNamesTheCycle(t *testing.T) {
	_, err := Resolve([]Node{
		node("crm", "table a", []string{"email", "y"}, []string{"x"}),
		node("crm", "table b", []string{"x"}, []string{"y"}),
	}, []string{"email"})
	var ce *CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *CycleError", err)
	}
	if !reflect.DeepEqual(ce.Cycle, []string{"x", "y", "x"}) {
		t.Fatalf("cycle %q", ce.Cycle)
	}
}

func TestResolveNamesEveryUnprovided(t *testing.T) {
	_, err := Resolve([]Node{
		node("crm", "table a", []string{"email"}, []string{"x"}),
		node("crm", "table b", []string{"p"}, nil),
		node("cache", "key c:{q}", []string{"q"}, nil),
	}, []string{"email"})
	var ue *UnprovidedError
	if !errors.As(err, &ue) || len(ue.Identifiers) != 2 || ue.Identifiers["q"][0] != "key c:{q} of cache" {
		t.Fatalf("got %v", err)
	}
}

func TestFromSpec(t *testing.T) {
	spec := &privacyv1alpha1.DataStoreSpec{
		Tables: []privacyv1alpha1.TableMapping{{
			Name:     "customer",
			Match:    []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}, {Column: "alt", Identifier: "email"}},
			Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}},
		}},
		Keys: []privacyv1alpha1.KeyMapping{{Pattern: "cart:{customerId}:{region}:*"}},
	}
	nodes := FromSpec("s", spec)
	if len(nodes) != 2 || !reflect.DeepEqual(nodes[0].Match, []string{"email"}) ||
		!reflect.DeepEqual(nodes[0].Provides, []string{"customerId"}) ||
		!reflect.DeepEqual(nodes[1].Match, []string{"customerId", "region"}) {
		t.Fatalf("nodes %+v", nodes)
	}
	if !Linked(nodes) || Linked(nodes[1:]) {
		t.Fatal("Linked is wrong")
	}
}

func TestFromSpecObjects(t *testing.T) {
	spec := &privacyv1alpha1.DataStoreSpec{Objects: []privacyv1alpha1.ObjectMapping{{Bucket: "docs", Key: "users/{customerId}/{customerId}-{email}.pdf"}}}
	nodes := FromSpec("s", spec)
	if len(nodes) != 1 || !reflect.DeepEqual(nodes[0].Match, []string{"customerId", "email"}) || nodes[0].Mapping != "object key docs/users/{customerId}/{customerId}-{email}.pdf (objects[0])" {
		t.Fatalf("nodes %+v", nodes)
	}
}

func TestResolveWaves(t *testing.T) {
	shop := func(store string) []Node {
		return []Node{
			node(store, "table customers", []string{"email"}, []string{"customerId"}),
			node(store, "table orders", []string{"customerId"}, []string{"orderId"}),
			node(store, "table order_item", []string{"orderId"}, nil),
		}
	}
	cases := []struct {
		name  string
		nodes []Node
		want  [][]string
	}{
		{"two stores of the same shape derive side by side", append(shop("pg"), shop("my")...),
			[][]string{{"pg", "my"}, {"pg", "my"}}},
		{"across stores, back and forth", []Node{
			node("billing", "table invoices", []string{"customerId"}, []string{"invoiceId"}),
			node("crm", "table customer", []string{"email"}, []string{"customerId"}),
			node("crm", "table refunds", []string{"invoiceId"}, []string{"refundId"}),
			node("cache", "key refund:{refundId}", []string{"refundId"}, nil),
		}, [][]string{{"crm"}, {"billing"}, {"crm"}}},
		{"independent stores are one wave", []Node{
			node("a", "table users", []string{"email"}, []string{"userId"}),
			node("b", "table members", []string{"email"}, []string{"memberId"}),
			node("b", "table cards", []string{"memberId"}, nil),
		}, [][]string{{"a", "b"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Resolve(tc.nodes, []string{"email"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plan.Waves, tc.want) {
				t.Fatalf("waves %q, want %q", plan.Waves, tc.want)
			}
		})
	}
}
