package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/subject"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
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
		secretsOf[p.email] = "the email of subject " + label(p)
		secretsOf[p.userID] = "the userId of subject " + label(p)
	}
	for _, cred := range storeCredentials(t, c, ns) {
		secretsOf[cred] = "a store credential"
	}
	for v, what := range installationSecrets(t, c) {
		secretsOf[v] = what
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
		where := "the log of manager " + m.name + " (" + m.logPath + ")"
		sources[where] = string(b)
		if dumps := decodedBodies(string(b)); dumps != "" {
			sources["request and response bodies dumped in "+where] = dumps
		}
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

// installationSecrets are the salt and the receipt signing key of the operator namespace, in the
// forms they could be logged in.
func installationSecrets(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	var salt, key corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: subject.SaltSecretName}, &salt); err == nil {
		for _, v := range salt.Data {
			out[string(v)] = "the installation's salt"
			out[base64.StdEncoding.EncodeToString(v)] = "the installation's salt (base64)"
			out[hex.EncodeToString(v)] = "the installation's salt (hex)"
		}
	}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: receipt.KeySecretName}, &key); err == nil {
		for _, v := range key.Data {
			if block, _ := pem.Decode(v); block != nil {
				out[base64.StdEncoding.EncodeToString(block.Bytes)[:40]] = "the receipt signing key"
			}
			out[base64.StdEncoding.EncodeToString(v)[:40]] = "the receipt signing key (base64 of the PEM)"
		}
	}
	return out
}

// hexDumpLine is one line of client-go's dump of a request or response body:
// "00000010  65 74 12 92 02 0a e4 01  0a 0a 68 6f 73 74 69 6c  |et........hostil|".
var hexDumpLine = regexp.MustCompile(`^[0-9a-f]{8}  ((?:[0-9a-f]{2}  ?)+) *\|`)

// decodedBodies turns the hex dumps in a log back into the bytes that were sent or received, so
// that a value split across dump lines is still found.
func decodedBodies(log string) string {
	var out strings.Builder
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			Body string `json:"body"`
		}
		if !strings.Contains(line, `"body"`) || json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		for _, dl := range strings.Split(entry.Body, "\n") {
			m := hexDumpLine.FindStringSubmatch(dl)
			if m == nil {
				continue
			}
			for _, h := range strings.Fields(m[1]) {
				if b, err := hex.DecodeString(h); err == nil {
					out.Write(b)
				}
			}
		}
		out.WriteByte('\n')
	}
	return out.String()
}

// TestMostVerboseLogsHoldNoSecrets runs a full deletion and access request with the manager at
// --zap-log-level=10, where client-go dumps request and response bodies: the dumps of the Secrets
// the operator reads (identifiers, connection strings, salt, signing key) and writes (exports)
// must not reach the log either.
func TestMostVerboseLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	exclusiveManager(t)
	ns := newNamespace(t, env.Client, nil)
	pgDSN, err := teststore.SharedPostgres(t).CreateDatabase(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	shops := map[string]*shop{"pg": openShop(t, privacyv1alpha1.StoreTypePostgres, pgDSN)}
	subjects := people("verbose", 2)
	names := setUpShops(t, env.Client, ns, shops, subjects, people("verbose-bystander", 1), 10*time.Second)
	m := startManager(t, "manager", managerOptions{logLevel: "10"})
	createRequests(t, env.Client, ns, names, 0, 1)
	create(t, env.Client, accessRequest(ns, "access", "subject-01"))
	waitAllCompleted(t, env.Client, ns, names[:1], settle)
	eventually(t, settle, func() (bool, string) {
		var ar privacyv1alpha1.AccessRequest
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "access"}, &ar); err != nil {
			return false, err.Error()
		}
		return ar.Status.Export != nil, fmt.Sprintf("access request: %+v", ar.Status)
	})
	assertNoLeaks(t, env.Client, ns, []*manager{m}, subjects)
}
