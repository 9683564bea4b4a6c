package controllers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

func withSuppressionLists(o *operator.Options) { o.EnableSuppressionLists = true }

func dropList(ns, name, download string, interval time.Duration) *privacyv1alpha1.SuppressionList {
	l := suppressionList(ns, name, privacyv1alpha1.SuppressionSource{DropSecretRef: &privacyv1alpha1.LocalObjectReference{Name: download}})
	l.Spec.SweepInterval = &metav1.Duration{Duration: interval}
	return l
}

// A store down during a sweep is reported (Ready=False naming it, the store's message, a Warning
// event), its items are not called "not found", and the sweep is tried again well before the
// next interval: once the store is back, the item is deleted and reported as such.
func TestSuppressionListSweepOfAStoreDownIsRetriedAndReported(t *testing.T) {
	pg, err := teststore.StartPostgres(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	dsn, err := pg.CreateDatabase(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	f := openFixture(t, "pgx", dsn, dsn, privacyv1alpha1.StoreTypePostgres, pgPlaceholder)
	startOperator(t, withSuppressionLists)
	ns := newNamespace(t, nil)
	f.dataStore(t, ns, "pg")
	_ = f.db.Close()
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	create(t, dropSecret(ns, "drop-download", map[string]string{"email.csv": "A-1," + dropHash(subjectIDs["email"]) + "\n"}))
	// Without the retry, the next sweep would come after two minutes.
	create(t, dropList(ns, "drop", "drop-download", 2*time.Minute))

	l := waitSupl(t, ns, "drop", 60*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return hasReason(l.Status.Conditions, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonSweepFailed) && l.Status.Sweeps >= 1
	})
	t.Logf("store down: %s", describeSupl(l))
	if msg := condition(l.Status.Conditions, privacyv1alpha1.ConditionReady); !strings.Contains(msg, "DataStore pg") {
		t.Errorf("Ready does not name the store: %q", msg)
	}
	if st := suplStore(t, l, "pg"); st.Message == "" {
		t.Errorf("the store's status says nothing of the failure: %s", describeSupl(l))
	}
	if r := reportOf(t, l); r["A-1"] != "" {
		t.Errorf("an item was decided by a sweep that could not read the store: %s", describeReport(r))
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		evs, err := eventsAbout(ns, "drop")
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			if e.Type == corev1.EventTypeWarning && e.Reason == privacyv1alpha1.ReasonSweepFailed {
				return true, ""
			}
		}
		return false, describeEvents(evs)
	})

	if err := pg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	l = waitSupl(t, ns, "drop", 70*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
		return isTrue(l.Status.Conditions, privacyv1alpha1.ConditionReady) && reportOf(t, l)["A-1"] == "3"
	})
	t.Logf("store back: %s", describeSupl(l))
	if l.Status.LastSweepTime == nil || l.Status.NextSweepTime == nil || l.Status.NextSweepTime.Sub(l.Status.LastSweepTime.Time) != 2*time.Minute {
		t.Errorf("after a good sweep the next is one interval later: %s", describeSupl(l))
	}
	f.assertErased(t)
	f.assertBystanderIntact(t)
}

// Hostile DROP downloads loaded through the API are refused with the file and the line, and the
// list keeps what it holds (its entries and their statuses); a download too large for a Secret
// is refused by the API server and changes nothing either.
func TestSuppressionListRefusesHostileDownloadsAndKeepsWhatItHolds(t *testing.T) {
	f := startPostgresFixture(t)
	startOperator(t, withSuppressionLists)
	ns := newNamespace(t, nil)
	f.dataStore(t, ns, "pg")
	good := "A-1," + dropHash(subjectIDs["email"])
	other := "B-2," + dropHash("nobody@example.com")
	cases := map[string]struct{ data, want string }{
		"bad-base64": {good + "\nB-2,not*base64\n", "email.csv line 2: hash is not standard base64"},
		"short-hash": {good + "\nB-2," + base64.StdEncoding.EncodeToString([]byte("short")) + "\n", "email.csv line 2: hash is 5 bytes"},
		"dup-ids":    {"ID,Hash\n" + good + "\nA-1," + dropHash("nobody@example.com") + "\n", "email.csv line 3: ID repeats the ID of email.csv line 2"},
		"long-line":  {good + "\nB-2," + strings.Repeat("A", 700<<10) + "\n", "email.csv line 2: line is longer than 4096 bytes"},
		"crlf-lf":    {good + "\r\n" + other + "\n", "email.csv line 2: line ends differ"},
		"lone-cr":    {good + "\r" + other + "\n", "email.csv line 1: line holds a carriage return"},
	}
	for name := range cases {
		create(t, dropSecret(ns, name, map[string]string{"email.csv": good + "\n"}))
		create(t, dropList(ns, name, name, 10*time.Second))
	}
	// The first list to sweep erases Jane (3); the others find her retained invoice only (2).
	decided := map[string]string{}
	for name := range cases {
		waitSupl(t, ns, name, 60*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
			decided[name] = reportOf(t, l)["A-1"]
			return l.Status.Entries == 1 && decided[name] != ""
		})
	}
	ctx := context.Background()
	for name, tc := range cases {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		s.Data = map[string][]byte{"email.csv": []byte(tc.data)}
		if err := env.Client.Update(ctx, &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// 10 MB in one line: more than the API server stores in one object.
	var big corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "long-line"}, &big); err != nil {
		t.Fatal(err)
	}
	big.Data = map[string][]byte{"email.csv": []byte(good + "\nB-2," + strings.Repeat("A", 10<<20) + "\n")}
	if err := env.Client.Update(ctx, &big); err == nil {
		t.Errorf("the API server took a 10 MB Secret")
	}
	for name, tc := range cases {
		// Downloads are read every minute at the latest.
		l := waitSupl(t, ns, name, 100*time.Second, func(l *privacyv1alpha1.SuppressionList) bool {
			return hasReason(l.Status.Conditions, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonEntriesInvalid)
		})
		msg := condition(l.Status.Conditions, privacyv1alpha1.ConditionReady)
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, fmt.Sprintf("%q", name)) {
			t.Errorf("%s: Ready says %q, want the Secret and %q", name, msg, tc.want)
		}
		if strings.Contains(msg, dropHash("nobody@example.com")) || strings.Contains(msg, "AAAA") {
			t.Errorf("%s: Ready quotes the download: %q", name, msg)
		}
		// Nothing stored was lost: the entry, its status, and the list's storage read whole.
		l = waitSupl(t, ns, name, 30*time.Second, func(l *privacyv1alpha1.SuppressionList) bool { return l.Status.Sweeps >= 2 })
		if l.Status.Entries != 1 || reportOf(t, l)["A-1"] != decided[name] {
			t.Errorf("%s: the refused download changed what the list held: %s, report %s", name, describeSupl(l), describeReport(reportOf(t, l)))
		}
		if idx := readIndex(t, ns, name); idx.Entries != 1 {
			t.Errorf("%s: the index holds %d entries", name, idx.Entries)
		}
	}
}

func readIndex(t *testing.T, ns, list string) suppression.Index {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: suppression.IndexName(list)}, &s); err != nil {
		t.Fatal(err)
	}
	var idx suppression.Index
	if err := json.Unmarshal(s.Data["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

// hangingListener accepts connections and never answers: a store whose sweep is under way for
// as long as the test wants.
func hangingListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// The manager is stopped while a sweep is under way (the first store done, the second still
// being read) and started again: the sweep resumes with the second store. The first store is not
// swept again, so its erasures are neither lost (a second pass would find nothing) nor counted
// twice, and the sweep is counted once.
func TestSuppressionListSweepResumesAfterARestart(t *testing.T) {
	a := startPostgresFixture(t)
	b := startPostgresFixture(t)
	b.exec(t, `DELETE FROM customers WHERE email = $1`, subjectIDs["email"])
	b.exec(t, `DELETE FROM orders WHERE customer_email = $1`, subjectIDs["email"])
	op := startOperator(t, withSuppressionLists)
	ns := newNamespace(t, nil)
	a.dataStore(t, ns, "a")
	// Store b's connection hangs until the manager is stopped.
	hanging, err := url.Parse(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	hanging.Host = hangingListener(t)
	create(t, connSecret(ns, "b-conn", map[string]string{"dsn": hanging.String()}))
	spec := b.spec("b-conn")
	spec.Connection.Timeout = &metav1.Duration{Duration: 2 * time.Minute}
	create(t, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "b"}, Spec: spec})
	create(t, dropSecret(ns, "drop-download", map[string]string{"email.csv": "A-1," + dropHash(subjectIDs["email"]) + "\n"}))
	create(t, dropList(ns, "drop", "drop-download", time.Hour))

	eventually(t, 60*time.Second, func() (bool, string) {
		var s corev1.Secret
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: suppression.IndexName("drop")}, &s); err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(s.Data["index.json"]), `"name":"a"`), string(s.Data["index.json"])
	})
	a.assertErased(t)
	op.Stop()
	if l := getSupl(t, ns, "drop"); l.Status.Sweeps != 0 {
		t.Fatalf("the sweep ended before the manager was stopped: %s", describeSupl(l))
	}
	var conn corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "b-conn"}, &conn); err != nil {
		t.Fatal(err)
	}
	conn.Data = map[string][]byte{"dsn": []byte(b.dsn)}
	if err := env.Client.Update(context.Background(), &conn); err != nil {
		t.Fatal(err)
	}
	startOperator(t, withSuppressionLists)
	l := waitSupl(t, ns, "drop", 60*time.Second, func(l *privacyv1alpha1.SuppressionList) bool { return l.Status.Sweeps >= 1 })
	t.Logf("after the restart: %s", describeSupl(l))
	if l.Status.Sweeps != 1 {
		t.Errorf("sweeps: %d, want 1", l.Status.Sweeps)
	}
	if st := suplStore(t, l, "a"); st.Erased != 3 || st.Retained != 1 {
		t.Errorf("store a: erased %d retained %d, want 3 and 1 (swept once, before the restart)", st.Erased, st.Retained)
	}
	if st := suplStore(t, l, "b"); st.Message != "" || !st.Supported || st.Scanned == 0 {
		t.Errorf("store b was not swept after the restart: %s", describeSupl(l))
	}
	if r := reportOf(t, l); r["A-1"] != "3" {
		t.Errorf("report: %s, want A-1=3", describeReport(r))
	}
	if idx := readIndex(t, ns, "drop"); idx.Sweep != nil {
		t.Errorf("the checkpoint outlived its sweep: %+v", idx.Sweep)
	}
	b.assertBystanderIntact(t)
}
