package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func waitStoreCondition(t *testing.T, obj client.Object, conds func() []metav1.Condition, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	eventually(t, settle, func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		for i, c := range conds() {
			if c.Type == privacyv1alpha1.ConditionReady {
				got = &conds()[i]
				return c.Status == status && c.Reason == reason, fmt.Sprintf("%s Ready=%s/%s (%s), want %s/%s", obj.GetName(), c.Status, c.Reason, c.Message, status, reason)
			}
		}
		return false, obj.GetName() + ": no Ready condition"
	})
	return got
}

func labeled(ds *privacyv1alpha1.DataStore, labels map[string]string) *privacyv1alpha1.DataStore {
	ds.Labels = labels
	return ds
}

func clusterStore(t *testing.T, name, secretName string, selector *metav1.LabelSelector, labels map[string]string) *privacyv1alpha1.ClusterDataStore {
	t.Helper()
	cds := &privacyv1alpha1.ClusterDataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: privacyv1alpha1.ClusterDataStoreSpec{
			DataStoreSpec:     shopSpec(privacyv1alpha1.StoreTypeSQLite, secretName, 10*time.Second),
			NamespaceSelector: selector,
		},
	}
	create(t, env.Client, cds)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), cds) })
	return cds
}

// TestRequestsCannotReachOtherNamespaces: a request, and a DataStore, in one namespace name
// Secrets and stores that exist only in another namespace, or in the operator's; the operator
// looks only where the object's own namespace (or, for a ClusterDataStore, the operator namespace
// and the namespaceSelector) allows, and the other namespace's databases are left untouched.
func TestRequestsCannotReachOtherNamespaces(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ctx := context.Background()
	nsA := newNamespace(t, env.Client, map[string]string{"team": "a"})
	nsB := newNamespace(t, env.Client, map[string]string{"team": "b"})
	jane := person{email: "isolated-jane@shop.example", userID: "isolated-jane"}
	seeded := func() *shop {
		s := sqliteShop(t)
		s.seed(t, jane)
		return s
	}
	// What B owns: its store, its connection Secret, its subject's identifiers.
	shopB := seeded()
	create(t, env.Client, connSecret(nsB, "b-conn", map[string]string{"dsn": shopB.dsn}))
	create(t, env.Client, labeled(&privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: nsB, Name: "b-store"},
		Spec: shopSpec(privacyv1alpha1.StoreTypeSQLite, "b-conn", 10*time.Second)}, map[string]string{"owner": "b"}))
	create(t, env.Client, secret(nsB, "jane-b", jane.ids()))

	// What A owns, and a shared store that admits A (its Secret in the operator namespace).
	shopA := seeded()
	create(t, env.Client, connSecret(nsA, "a-conn", map[string]string{"dsn": shopA.dsn}))
	create(t, env.Client, labeled(&privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "a-store"},
		Spec: shopSpec(privacyv1alpha1.StoreTypeSQLite, "a-conn", 10*time.Second)}, map[string]string{"use": "main"}))
	create(t, env.Client, secret(nsA, "jane", jane.ids()))
	sharedA := seeded()
	create(t, env.Client, connSecret(operatorNamespace, nsA+"-shared-conn", map[string]string{"dsn": sharedA.dsn}))
	clusterStore(t, nsA+"-shared", nsA+"-shared-conn", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}, map[string]string{"use": "main"})

	// Shared stores that must not serve A: one admitting only team b, one with no selector
	// (admits none), one with a selector that does not parse (admits none).
	forB, noSelector, badSelector := seeded(), seeded(), seeded()
	for name, s := range map[string]*shop{"for-b": forB, "no-selector": noSelector, "bad-selector": badSelector} {
		create(t, env.Client, connSecret(operatorNamespace, nsA+"-"+name+"-conn", map[string]string{"dsn": s.dsn}))
	}
	clusterStore(t, nsA+"-for-b", nsA+"-for-b-conn", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}, nil)
	clusterStore(t, nsA+"-no-selector", nsA+"-no-selector-conn", nil, nil)
	bad := clusterStore(t, nsA+"-bad-selector", nsA+"-bad-selector-conn", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "team", Operator: "Like", Values: []string{"a"}}}}, nil)

	// Hostile stores in A: one names B's connection Secret, a shared one names A's (ClusterDataStores
	// read Secrets only in the operator namespace).
	sneaky := labeled(&privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "sneaky"},
		Spec: shopSpec(privacyv1alpha1.StoreTypeSQLite, "b-conn", 10*time.Second)}, map[string]string{"use": "sneaky"})
	create(t, env.Client, sneaky)
	tenantSecret := clusterStore(t, nsA+"-tenant-secret", "a-conn", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}, map[string]string{"use": "tenant-secret"})

	m := startManager(t, "manager", managerOptions{})
	selecting := func(use string) func(*privacyv1alpha1.DeletionRequest) {
		return func(dr *privacyv1alpha1.DeletionRequest) {
			dr.Spec.StoreSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"use": use}}
		}
	}
	create(t, env.Client, deletionRequest(nsA, "erase", "jane", selecting("main")))
	create(t, env.Client, deletionRequest(nsA, "foreign-ids", "jane-b", selecting("main")))
	create(t, env.Client, accessRequest(nsA, "foreign-ids", "jane-b"))
	create(t, env.Client, deletionRequest(nsA, "via-sneaky", "jane", selecting("sneaky")))
	create(t, env.Client, deletionRequest(nsA, "via-tenant-secret", "jane", selecting("tenant-secret")))
	create(t, env.Client, deletionRequest(nsA, "select-b", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.StoreSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"owner": "b"}}
	}))

	// A's own request uses exactly A's store and the shared store that admits A.
	dr := waitAllCompleted(t, env.Client, nsA, []string{"erase"}, settle)["erase"]
	var used []string
	for _, s := range dr.Status.Stores {
		used = append(used, string(s.Kind)+"/"+s.Name)
	}
	if want := "DataStore/a-store ClusterDataStore/" + nsA + "-shared"; strings.Join(used, " ") != want {
		t.Errorf("the request used %v, want %s", used, want)
	}
	shopA.assertErased(t, jane)
	sharedA.assertErased(t, jane)

	// An identifiers Secret that exists only in B is not found from A.
	dr = waitDR(t, env.Client, nsA, "foreign-ids", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonIdentifiersMissing, settle)
	if c := condOf(dr.Status.Conditions, privacyv1alpha1.ConditionAccepted); !strings.Contains(c.Message, `"jane-b" not found in namespace "`+nsA+`"`) {
		t.Errorf("the message does not say where it looked: %q", c.Message)
	}
	eventually(t, settle, func() (bool, string) {
		var ar privacyv1alpha1.AccessRequest
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsA, Name: "foreign-ids"}, &ar); err != nil {
			return false, err.Error()
		}
		for _, c := range ar.Status.Conditions {
			if c.Status == metav1.ConditionFalse && c.Reason == privacyv1alpha1.ReasonIdentifiersMissing {
				return ar.Status.Export == nil, "an export was made"
			}
		}
		return false, fmt.Sprintf("access request with B's identifiers: %+v", ar.Status.Conditions)
	})

	// A DataStore in A naming B's connection Secret: not found in A; the store fails, B's data stays.
	c := waitStoreCondition(t, sneaky, func() []metav1.Condition { return sneaky.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, `"b-conn" not found in namespace "`+nsA+`"`) {
		t.Errorf("sneaky store: %q", c.Message)
	}
	dr = waitDR(t, env.Client, nsA, "via-sneaky", privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed, settle)
	if s := storeStatus(t, dr, "sneaky"); s.Phase != privacyv1alpha1.StoreFailed || !strings.Contains(s.Message, "not found in namespace \""+nsA+"\"") {
		t.Errorf("via-sneaky: %s %q", s.Phase, s.Message)
	}

	// A ClusterDataStore naming a Secret of a tenant namespace: looked for in the operator namespace only.
	c = waitStoreCondition(t, tenantSecret, func() []metav1.Condition { return tenantSecret.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, `not found in namespace "`+operatorNamespace+`"`) {
		t.Errorf("tenant-secret store: %q", c.Message)
	}
	dr = waitDR(t, env.Client, nsA, "via-tenant-secret", privacyv1alpha1.ConditionErased, metav1.ConditionFalse, privacyv1alpha1.ReasonStoreFailed, settle)
	if s := storeStatus(t, dr, nsA+"-tenant-secret"); s.Phase != privacyv1alpha1.StoreFailed {
		t.Errorf("via-tenant-secret: %s %q", s.Phase, s.Message)
	}

	// A storeSelector matching B's store finds nothing from A.
	waitDR(t, env.Client, nsA, "select-b", privacyv1alpha1.ConditionAccepted, metav1.ConditionFalse, privacyv1alpha1.ReasonNoStores, settle)

	// The malformed namespaceSelector is reported on the store, which admits nobody.
	waitStoreCondition(t, bad, func() []metav1.Condition { return bad.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonMappingInvalid)

	for name, s := range map[string]*shop{"B's store": shopB, "the store for team b": forB, "the store without selector": noSelector, "the store with a bad selector": badSelector} {
		if n := s.count(t, `SELECT COUNT(*) FROM customers WHERE email = ?`, jane.email); n != 1 {
			t.Errorf("%s was reached from namespace A: %d customer rows of the subject left", name, n)
		}
		s.assertIntact(t, jane)
	}
	assertNoLeaks(t, env.Client, nsA, []*manager{m}, []person{jane})
}

func condOf(conds []metav1.Condition, typ string) metav1.Condition {
	for _, c := range conds {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// TestFutureReceivedAtCannotPostponeTheDeadline: spec.receivedAt lets a portal say the person
// asked before the object was created. A receivedAt after the creation would move the deadline
// past the one the regulation sets and hide a late answer; the clock must not start after the
// request existed.
func TestFutureReceivedAtCannotPostponeTheDeadline(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ns := newNamespace(t, env.Client, nil)
	s := sqliteShop(t)
	s.dataStore(t, env.Client, ns, "db", 10*time.Second)
	create(t, env.Client, secret(ns, "jane", person{email: "future@shop.example", userID: "future"}.ids()))
	create(t, env.Client, deletionRequest(ns, "future", "jane", func(dr *privacyv1alpha1.DeletionRequest) {
		dr.Spec.ReceivedAt = &metav1.Time{Time: time.Now().AddDate(5, 0, 0)}
	}))
	startManager(t, "manager", managerOptions{})
	var dr *privacyv1alpha1.DeletionRequest
	eventually(t, settle, func() (bool, string) {
		dr = getDR(t, env.Client, ns, "future")
		return dr.Status.Deadline != nil, describe(dr)
	})
	latest := dr.CreationTimestamp.AddDate(0, 1, 1)
	if dr.Status.Deadline.After(latest) {
		t.Errorf("a receivedAt five years ahead set the deadline to %s; a GDPR request created %s is due by %s at the latest",
			dr.Status.Deadline.UTC().Format(time.RFC3339), dr.CreationTimestamp.UTC().Format(time.RFC3339), latest.UTC().Format(time.RFC3339))
	}
}
