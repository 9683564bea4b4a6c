package e2e

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// countingListener accepts TCP connections on addr, counts them and closes each at once.
func countingListener(t *testing.T, addr string) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	return l.Addr().String(), &n
}

// TestManagerEgressFlagsAndStatusCategories runs the manager with --store-deny-cidrs=127.0.0.2/32
// and without --allow-insecure-http: an http and a postgres store aimed at a listener on 127.0.0.2
// are refused (EgressDenied) and the listener receives no connection; a plain http:// store without
// opt-in is refused and its listener, on an admitted address, receives none either. A postgres
// store whose server hangs up shows viewers only the failure's category: not the host, port, user
// or database its DSN names, which the driver's own error text holds.
func TestManagerEgressFlagsAndStatusCategories(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	denied, deniedConns := countingListener(t, "127.0.0.2:0")
	plain, plainConns := countingListener(t, "127.0.0.1:0")
	hangup, _ := countingListener(t, "127.0.0.1:0")
	ns := newNamespace(t, env.Client, nil)

	const user, database = "intruder_user_e2e", "secret_db_name_e2e"
	create(t, env.Client, connSecret(ns, "denied-pg", map[string]string{"dsn": fmt.Sprintf("postgres://%s:pw@%s/%s?sslmode=disable", user, denied, database)}))
	create(t, env.Client, connSecret(ns, "hangup-pg", map[string]string{"dsn": fmt.Sprintf("postgres://%s:pw@%s/%s?sslmode=disable", user, hangup, database)}))
	httpStore := func(name, url string) *privacyv1alpha1.DataStore {
		return &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: privacyv1alpha1.DataStoreSpec{Type: privacyv1alpha1.StoreTypeHTTP, Connection: privacyv1alpha1.Connection{URL: url}}}
	}
	pgStore := func(name, secretName string) *privacyv1alpha1.DataStore {
		return &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: shopSpec(privacyv1alpha1.StoreTypePostgres, secretName, 5*time.Second)}
	}
	stores := map[string]*privacyv1alpha1.DataStore{
		"denied-http":  httpStore("denied-http", "https://"+denied),
		"denied-pg":    pgStore("denied-pg", "denied-pg"),
		"plain-http":   httpStore("plain-http", "http://"+plain),
		"hangup-pg":    pgStore("hangup-pg", "hangup-pg"),
		"opted-in-out": httpStore("opted-in-out", "http://"+denied), // opted in, but still denied
	}
	stores["opted-in-out"].Spec.Connection.AllowInsecureHTTP = true
	for _, ds := range stores {
		create(t, env.Client, ds)
	}

	startManager(t, "egress", managerOptions{extra: []string{"--store-deny-cidrs=169.254.0.0/16,fe80::/10,127.0.0.2/32"}})

	for _, name := range []string{"denied-http", "denied-pg", "plain-http", "opted-in-out"} {
		ds := stores[name]
		c := waitStoreCondition(t, ds, func() []metav1.Condition { return ds.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonEgressDenied)
		if name == "plain-http" && !strings.Contains(c.Message, "allowInsecureHTTP") {
			t.Errorf("%s: the refusal does not say how to opt in: %s", name, c.Message)
		}
	}
	ds := stores["hangup-pg"]
	c := waitStoreCondition(t, ds, func() []metav1.Condition { return ds.Status.Conditions }, metav1.ConditionFalse, privacyv1alpha1.ReasonConnectionFailed)
	_, port, _ := net.SplitHostPort(hangup)
	for _, leaked := range []string{user, database, hangup, ":" + port} {
		if strings.Contains(c.Message, leaked) {
			t.Errorf("hangup-pg: the status names %q: %s", leaked, c.Message)
		}
	}
	// A few more health checks' worth of time: still nothing reaches the refused listeners.
	time.Sleep(3 * time.Second)
	if n := deniedConns.Load(); n != 0 {
		t.Errorf("the listener on 127.0.0.2, denied by --store-deny-cidrs, received %d connections", n)
	}
	if n := plainConns.Load(); n != 0 {
		t.Errorf("the plain http:// listener, not opted in, received %d connections", n)
	}
}
