package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
)

func waitStoreReady(t *testing.T, obj client.Object, conds func() []metav1.Condition, status metav1.ConditionStatus, reason string) {
	t.Helper()
	eventually(t, settle, func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		return hasReason(conds(), privacyv1alpha1.ConditionReady, status, reason),
			fmt.Sprintf("Ready want %s/%s: %s", status, reason, condition(conds(), privacyv1alpha1.ConditionReady))
	})
}

func TestDataStoreHealth(t *testing.T) {
	// Secrets are polled, not watched: a short poll shows each change of a Secret at once.
	startOperator(t, func(o *operator.Options) { o.SecretPollInterval = time.Second })
	ns := newNamespace(t, nil)
	f := startPostgresFixture(t)

	good := f.dataStore(t, ns, "good")
	waitStoreReady(t, good, func() []metav1.Condition { return good.Status.Conditions }, metav1.ConditionTrue, privacyv1alpha1.ReasonReady)
	if good.Status.ObservedGeneration != good.Generation || good.Status.LastCheckTime == nil {
		t.Errorf("status %+v", good.Status)
	}

	// A table that does not exist.
	create(t, secret(ns, "bad-mapping-conn", map[string]string{"dsn": f.dsn}))
	spec := f.spec("bad-mapping-conn")
	spec.Tables[0].Name = "no_such_table"
	badMapping := &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-mapping"}, Spec: spec}
	create(t, badMapping)
	waitStoreReady(t, badMapping, func() []metav1.Condition { return badMapping.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonMappingInvalid)
	if c := condition(badMapping.Status.Conditions, privacyv1alpha1.ConditionReady); !strings.Contains(c, "no_such_table") {
		t.Errorf("the message does not name the table: %s", c)
	}

	// A missing Secret, then the Secret with a wrong password, then the right one: each change of
	// the Secret is checked at once.
	wrong := &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wrong"}, Spec: f.spec("wrong-conn")}
	create(t, wrong)
	conds := func() []metav1.Condition { return wrong.Status.Conditions }
	waitStoreReady(t, wrong, conds, metav1.ConditionFalse, privacyv1alpha1.ReasonSecretNotFound)
	badDSN := replacePassword(f.dsn)
	s := secret(ns, "wrong-conn", map[string]string{"dsn": badDSN})
	create(t, s)
	waitStoreReady(t, wrong, conds, metav1.ConditionFalse, privacyv1alpha1.ReasonConnectionFailed)
	if c := condition(conds(), privacyv1alpha1.ConditionReady); strings.Contains(c, "wrong-password") {
		t.Errorf("the password is in the status: %s", c)
	}
	s.StringData = map[string]string{"dsn": f.dsn}
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitStoreReady(t, wrong, conds, metav1.ConditionTrue, privacyv1alpha1.ReasonReady)
	waitEvent(t, ns, "wrong", privacyv1alpha1.ReasonConnectionFailed, "")
	waitEvent(t, ns, "wrong", privacyv1alpha1.ReasonReady, "")

	// A Ready store is checked again every checkInterval (5 minutes here), but a rotated Secret is
	// seen at the next poll.
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(s), s); err != nil {
		t.Fatal(err)
	}
	s.StringData = map[string]string{"dsn": badDSN}
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(wrong), wrong); err != nil {
			return false, err.Error()
		}
		return hasReason(conds(), privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonConnectionFailed),
			"the rotated Secret was not seen: " + condition(conds(), privacyv1alpha1.ConditionReady)
	})

	// A ClusterDataStore's Secret lives in the operator namespace.
	create(t, secret(operatorNamespace, "cluster-pg-"+ns, map[string]string{"dsn": f.dsn}))
	cds := &privacyv1alpha1.ClusterDataStore{ObjectMeta: metav1.ObjectMeta{Name: "pg-" + ns},
		Spec: privacyv1alpha1.ClusterDataStoreSpec{DataStoreSpec: f.spec("cluster-pg-" + ns),
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}}
	createClusterScoped(t, cds)
	waitStoreReady(t, cds, func() []metav1.Condition { return cds.Status.Conditions }, metav1.ConditionTrue, privacyv1alpha1.ReasonReady)
}

// replacePassword swaps the password of a postgres URL for a wrong one.
func replacePassword(dsn string) string {
	at := strings.Index(dsn, "@")
	colon := strings.LastIndex(dsn[:at], ":")
	if colon < len("postgres://") {
		return dsn[:len("postgres://")] + "postgres:wrong-password" + dsn[at:]
	}
	return dsn[:colon+1] + "wrong-password" + dsn[at:]
}
