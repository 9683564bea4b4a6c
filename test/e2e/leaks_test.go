package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// minLeakLen: shorter values ("%", "_", "*") occur in any log by chance; they are covered by the
// longer values of the same requests.
const minLeakLen = 6

// forms are the ways a value can appear in a log line or a JSON document: as is, JSON-escaped,
// Go-quoted.
func forms(v string) []string {
	out := []string{v}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	out = append(out, strings.Trim(strconv.Quote(v), `"`))
	return out
}

// assertNoLeaks checks that nothing the operator wrote — the managers' logs (every line, at
// debug level), the events of the namespace, the status of its requests and stores, its receipts
// — holds an identifier of the subjects or a credential of the namespace's stores.
func assertNoLeaks(t *testing.T, c client.Client, ns string, managers []*manager, subjects []person) {
	t.Helper()
	ctx := context.Background()
	secretsOf := map[string]string{}
	for _, p := range subjects {
		secretsOf[p.email] = "identifier " + label(p)
		secretsOf[p.userID] = "identifier " + label(p)
	}
	for _, cred := range storeCredentials(t, c, ns) {
		secretsOf[cred] = "a store credential"
	}

	sources := map[string]string{}
	for _, m := range managers {
		b, err := os.ReadFile(m.logPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Errorf("manager %s wrote no log at all: the scan proves nothing", m.name)
		}
		sources["the log of manager "+m.name+" ("+m.logPath+")"] = string(b)
	}
	var evs corev1.EventList
	if err := c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) == 0 {
		t.Error("no events were recorded: the scan proves nothing")
	}
	sources["the namespace's events"] = mustJSON(t, evs)
	var drs privacyv1alpha1.DeletionRequestList
	var ars privacyv1alpha1.AccessRequestList
	var dss privacyv1alpha1.DataStoreList
	for _, l := range []client.ObjectList{&drs, &ars, &dss} {
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	for _, dr := range drs.Items {
		sources["the status of DeletionRequest "+dr.Name] = mustJSON(t, dr.Status)
	}
	for _, ar := range ars.Items {
		sources["the status of AccessRequest "+ar.Name] = mustJSON(t, ar.Status)
	}
	for _, ds := range dss.Items {
		sources["the status of DataStore "+ds.Name] = mustJSON(t, ds.Status)
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		sources["ConfigMap "+cm.Name] = mustJSON(t, cm)
	}

	for value, what := range secretsOf {
		if len(value) < minLeakLen {
			continue
		}
		for where, text := range sources {
			for _, f := range forms(value) {
				if strings.Contains(text, f) {
					t.Errorf("%s appears in %s", what, where)
					break
				}
			}
		}
	}
}

// storeCredentials are the passwords in the namespace's connection Secrets.
func storeCredentials(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	var list corev1.SecretList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		if !strings.HasSuffix(s.Name, "-conn") {
			continue
		}
		for _, v := range s.Data {
			if u, err := url.Parse(string(v)); err == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && p != "" {
					out = append(out, p)
				}
			}
			if cfg, err := mysql.ParseDSN(string(v)); err == nil && cfg.Passwd != "" {
				out = append(out, cfg.Passwd)
			}
		}
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
