package discover_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlstore"
	"github.com/dsr-operator/dsr-operator/internal/discover"
	"github.com/dsr-operator/dsr-operator/internal/discover/discovertest"
	"github.com/dsr-operator/dsr-operator/internal/linkgraph"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	teststore.CloseShared()
	os.Exit(code)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// proposal runs discover on the shop and parses its output as kubectl would.
func proposal(t *testing.T, shop *discovertest.Shop) (*privacyv1alpha1.DataStore, string) {
	t.Helper()
	p, err := discover.Discover(ctxFor(t), shop.Type, shop.DSN, discover.Options{})
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	var out bytes.Buffer
	if err := discover.Render(&out, p, discover.Header{Name: "shop", SecretName: "shop-db", SecretKey: "dsn", Known: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	var ds privacyv1alpha1.DataStore
	if err := yaml.UnmarshalStrict(out.Bytes(), &ds); err != nil {
		t.Fatalf("the proposal does not parse: %v\n%s", err, out.String())
	}
	return &ds, out.String()
}

func find(tables []privacyv1alpha1.TableMapping, name string, action privacyv1alpha1.TableAction) *privacyv1alpha1.TableMapping {
	for i := range tables {
		if tables[i].Name == name && tables[i].Action == action {
			return &tables[i]
		}
	}
	return nil
}

func hasMatch(m *privacyv1alpha1.TableMapping, column, identifier string) bool {
	if m == nil {
		return false
	}
	for _, x := range m.Match {
		if strings.EqualFold(x.Column, column) && x.Identifier == identifier {
			return true
		}
	}
	return false
}

func hasProvide(m *privacyv1alpha1.TableMapping, identifier, column string) bool {
	if m == nil {
		return false
	}
	for _, x := range m.Provides {
		if strings.EqualFold(x.Column, column) && x.Identifier == identifier {
			return true
		}
	}
	return false
}

func TestDiscoverProposesTheShopsLinks(t *testing.T) {
	for _, typ := range discovertest.Engines {
		t.Run(string(typ), func(t *testing.T) {
			shop := discovertest.NewShop(t, typ)
			ds, text := proposal(t, shop)
			tables := ds.Spec.Tables
			customer := find(tables, "customer", privacyv1alpha1.ActionDelete)
			orders := find(tables, "orders", privacyv1alpha1.ActionDelete)
			address := find(tables, "address", privacyv1alpha1.ActionMask)
			checks := []struct {
				what string
				ok   bool
			}{
				{"customer matched on email", hasMatch(customer, "email", "email")},
				{"customer provides customerId from id", hasProvide(customer, "customerId", "id")},
				{"customer provides addressId from address_id", hasProvide(customer, "addressId", "address_id")},
				{"orders matched on customer_id", hasMatch(orders, "customer_id", "customerId")},
				{"orders provides orderId", hasProvide(orders, "orderId", "id")},
				{"orders provides addressId from shipping_address_id", hasProvide(orders, "addressId", "shipping_address_id")},
				{"order_item matched on order_id", hasMatch(find(tables, "order_item", privacyv1alpha1.ActionDelete), "order_id", "orderId")},
				{"payment_card matched on customer_id", hasMatch(find(tables, "payment_card", privacyv1alpha1.ActionDelete), "customer_id", "customerId")},
				{"login matched", hasMatch(find(tables, "login", privacyv1alpha1.ActionDelete), "customer_id", "customerId")},
				{"visit matched", hasMatch(find(tables, "visit", privacyv1alpha1.ActionDelete), "customer_id", "customerId")},
				{"service_request deleted by customer_id", hasMatch(find(tables, "service_request", privacyv1alpha1.ActionDelete), "customer_id", "customerId")},
				{"service_request alt_email masked", hasMatch(find(tables, "service_request", privacyv1alpha1.ActionMask), "alt_email", "email")},
				{"address masked on id", hasMatch(address, "id", "addressId") && address != nil && len(address.Mask) == 2},
				{"product not mapped", find(tables, "product", privacyv1alpha1.ActionDelete) == nil && find(tables, "product", privacyv1alpha1.ActionMask) == nil},
				{"phone not matched without --identifiers phone", !hasMatch(customer, "phone", "phone")},
				{"the phone column is pointed out", strings.Contains(text, "customer.phone look like phone")},
				{"the product table is explained", strings.Contains(text, "table product: the subject's order_item rows point at it")},
				{"alt_email's missing index is warned about", strings.Contains(text, "no index leads with column alt_email")},
				{"the DSN is not printed", !strings.Contains(text, shop.DSN)},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("%s: not so in\n%s", c.what, text)
				}
			}
			// InnoDB indexes every foreign key column itself; the others do not.
			if typ != privacyv1alpha1.StoreTypeMySQL && !strings.Contains(text, "no index leads with column customer_id: every request scans table visit") {
				t.Errorf("visit.customer_id's missing index is not warned about:\n%s", text)
			}
			if err := sqlstore.NewProvider(shop.Dialect, sqlstore.Options{}).ValidateSpec(&ds.Spec); err != nil {
				t.Errorf("ValidateSpec refuses the proposal: %v\n%s", err, text)
			}
			// What the controllers resolve before erasing: nothing unprovided with only the email
			// known, and no cycle.
			var nodes []linkgraph.Node
			for i, m := range tables {
				n := linkgraph.Node{Store: "DataStore test/shop", Mapping: "table " + m.Name, Index: i}
				for _, x := range m.Match {
					n.Match = append(n.Match, x.Identifier)
				}
				for _, x := range m.Provides {
					n.Provides = append(n.Provides, x.Identifier)
				}
				nodes = append(nodes, n)
			}
			if _, err := linkgraph.Resolve(nodes, []string{"email"}); err != nil {
				t.Errorf("the link graph does not resolve: %v", err)
			}
		})
	}
}

// TestTheProposalErasesTheSubject uses discover's output, unchanged, as the mapping of the real
// connector with only the email known: derive, erase, verify, and compare every row.
func TestTheProposalErasesTheSubject(t *testing.T) {
	for _, typ := range discovertest.Engines {
		t.Run(string(typ), func(t *testing.T) {
			shop := discovertest.NewShop(t, typ)
			ds, text := proposal(t, shop)
			before, err := discovertest.Take(ctxFor(t), shop.Raw)
			if err != nil {
				t.Fatal(err)
			}
			c, err := sqlstore.NewProvider(shop.Dialect, sqlstore.Options{}).NewClient(ctxFor(t), connector.Config{
				Name: "DataStore test/shop", Spec: &ds.Spec, Secret: []byte(shop.Enforcing), HashSalt: []byte("discover-test-salt"),
			})
			if err != nil {
				t.Fatalf("NewClient: %v\n%s", err, text)
			}
			defer c.Close()
			req := connector.Request{ID: "r1", Identifiers: connector.Identifiers{"email": discovertest.SubjectEmail}}
			derived, err := c.(connector.Deriver).Derive(ctxFor(t), req)
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			req.Values, req.Shared = derived.Values, derived.Shared
			res, err := c.Erase(ctxFor(t), req)
			if err != nil {
				t.Fatalf("Erase: %v\n%s", err, text)
			}
			// customer 1, orders 3, items 4, cards 2, logins 6, visits 2, own ticket 1; addresses
			// 1 and 5 and bob's ticket's alt_email masked; addresses 2 and 3 shared.
			if res.Erased != 19 || res.Masked != 3 || res.Shared != 2 {
				t.Errorf("erase: %d erased, %d masked, %d shared; want 19, 3, 2", res.Erased, res.Masked, res.Shared)
			}
			after, err := discovertest.Take(ctxFor(t), shop.Raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range discovertest.Diff(discovertest.Expected(before), after) {
				t.Error(d)
			}
			v, err := c.Verify(ctxFor(t), req)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if v.Remaining != 0 || v.Shared != 2 {
				t.Errorf("verify: %d remaining, %d shared; want 0 and 2", v.Remaining, v.Shared)
			}
		})
	}
}
