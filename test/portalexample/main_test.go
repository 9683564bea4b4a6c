package main

// The portal guide's examples, run as the portal would run them: with the token of a
// ServiceAccount that has nothing but the privacy-portal ClusterRole (as `make deploy` installs
// it), bound by the guide's RoleBinding, against a real API server and the operator working on a
// real SQLite store.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	_ "modernc.org/sqlite"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

const (
	// asMain makes the test binary run main() instead of the tests: TestProgramAsThePortal runs
	// the example program itself, flags and all, without compiling it again.
	asMain = "PORTALEXAMPLE_RUN_MAIN"

	operatorNamespace = "dsr-system"
	// As in the guide.
	portalNamespace      = "portal"
	portalServiceAccount = "privacy-portal"
	portalRole           = "dsr-privacy-portal-role"
	guide                = "docs/portal-guide.md"

	janeEmail = "jane.doe@example.com"
	maxEmail  = "max@example.org"
	// Differs from Jane's email only in its domain: must survive her erasure.
	bystanderEmail = "jane.doe@example.org"
)

var (
	env     *testenv.Env
	root    string
	kubectl string
	admin   string // kubeconfig of a cluster admin
)

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var err error
	if root, err = testenv.ModuleRoot(); err != nil {
		return fail(err)
	}
	if kubectl, err = findKubectl(); err != nil {
		return fail(err)
	}
	if env, err = testenv.Start(); err != nil {
		return fail(err)
	}
	defer func() { _ = env.Stop() }()
	dir, err := os.MkdirTemp("", "portalexample")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	admin = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(admin, env.KubeConfig, 0o600); err != nil {
		return fail(err)
	}

	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: portalNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: portalNamespace, Name: portalServiceAccount}},
	} {
		if err := env.Client.Create(ctx, obj); err != nil {
			return fail(err)
		}
	}
	// The portal's ClusterRole exactly as `make deploy` installs it.
	role, err := kustomizedPortalRole()
	if err != nil {
		return fail(err)
	}
	if err := env.Client.Create(ctx, role); err != nil {
		return fail(err)
	}

	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	opCtx, stop := context.WithCancel(ctx)
	mgr, pool, err := operator.New(opCtx, env.Config, operator.Options{
		OperatorNamespace: operatorNamespace,
		Manager: manager.Options{
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
		},
	})
	if err != nil {
		stop()
		return fail(err)
	}
	done := make(chan error, 1)
	go func() {
		defer pool.Close()
		done <- mgr.Start(opCtx)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "operator:", err)
		}
	}()
	return m.Run()
}

func findKubectl() (string, error) {
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p, nil
	}
	assets, err := testenv.BinaryAssetsDirectory(root)
	if err != nil {
		return "", err
	}
	p := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("kubectl is neither on PATH nor in %s", assets)
	}
	return p, nil
}

func kustomizedPortalRole() (*unstructured.Unstructured, error) {
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(root, "config", "default"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize config/default: %v\n%s", err, stderr.String())
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config/default has no ClusterRole %s", portalRole)
		}
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, err
		}
		if u.GetKind() == "ClusterRole" && u.GetName() == portalRole {
			return u, nil
		}
	}
}

// guideBlocks returns the fenced code blocks of the guide that follow a marker comment.
func guideBlocks(t *testing.T, marker string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, guide))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "<!-- "+marker+" -->" {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("%s:%d: the marker is not followed by a code block", guide, i+1)
		}
		var block []string
		j := i + 2
		for ; j < len(lines) && lines[j] != "```"; j++ {
			block = append(block, lines[j])
		}
		if j == len(lines) {
			t.Fatalf("%s:%d: unterminated code block", guide, i+2)
		}
		blocks = append(blocks, strings.Join(block, "\n")+"\n")
		i = j
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no blocks marked %q", guide, marker)
	}
	return blocks
}

func TestGuideShowsThisProgram(t *testing.T) {
	blocks := guideBlocks(t, "test/portalexample checks that the next block is test/portalexample/main.go")
	want, err := os.ReadFile(filepath.Join(root, "test", "portalexample", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 1 || blocks[0] != string(want) {
		t.Errorf("the Go example in %s differs from test/portalexample/main.go: copy main.go into the guide", guide)
	}
}

var shopCounter atomic.Int32

// shop is a namespace set up as the guide advises: requests only, served by a ClusterDataStore
// (whose connection Secret lives in the operator's namespace), the portal bound by the guide's
// RoleBinding.
type shop struct {
	ns string
	db *sql.DB
}

// newShop seeds a SQLite store with Jane, Max and a bystander. A broken shop's store points at a
// file that cannot be opened, so requests stay in Erasing.
func newShop(t *testing.T, broken bool) *shop {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("privacy-requests-%d", shopCounter.Add(1))
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"portalexample/shop": ns}}})

	path := filepath.Join(t.TempDir(), "shop.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s := &shop{ns: ns, db: db}
	for _, stmt := range []string{
		`CREATE TABLE customers (id TEXT NOT NULL, email TEXT NOT NULL, name TEXT, notes TEXT)`,
		`CREATE INDEX customers_email ON customers (email)`,
		`CREATE INDEX customers_id ON customers (id)`,
		`CREATE TABLE orders (id INTEGER NOT NULL, customer_email TEXT NOT NULL, address TEXT)`,
		`CREATE INDEX orders_email ON orders (customer_email)`,
	} {
		s.exec(t, stmt)
	}
	for i, p := range []struct{ id, email, name string }{
		{"4711", janeEmail, "Jane Doe"}, {"4712", maxEmail, "Max Mustermann"}, {"4713", bystanderEmail, "Jane Other"},
	} {
		// Long enough notes make the export big enough to be stored gzipped, so that the
		// examples' decompression runs.
		s.exec(t, `INSERT INTO customers (id, email, name, notes) VALUES (?, ?, ?, ?)`, p.id, p.email, p.name, strings.Repeat("Prefers delivery on Saturdays. ", 64))
		s.exec(t, `INSERT INTO orders (id, customer_email, address) VALUES (?, ?, ?)`, 100+i, p.email, fmt.Sprintf("%d Main Street", i+1))
	}
	if broken {
		path = filepath.Join(t.TempDir(), "missing-directory", "shop.db")
	}

	secret := "shop-db-" + ns
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: secret,
		Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeConnection}}, StringData: map[string]string{"path": path}})
	store := &privacyv1alpha1.ClusterDataStore{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: privacyv1alpha1.ClusterDataStoreSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"portalexample/shop": ns}},
			DataStoreSpec: privacyv1alpha1.DataStoreSpec{
				Type:        privacyv1alpha1.StoreTypeSQLite,
				Connection:  privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: secret, Key: "path"}},
				Description: "Web shop",
				Purposes:    []string{"Order fulfilment"},
				Tables: []privacyv1alpha1.TableMapping{
					{Name: "customers", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{
						{Column: "email", Identifier: "email"}, {Column: "id", Identifier: "userId"}}},
					{Name: "orders", Action: privacyv1alpha1.ActionMask, Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_email", Identifier: "email"}},
						Mask: []privacyv1alpha1.ColumnMask{{Column: "address", Strategy: privacyv1alpha1.MaskRedact}, {Column: "customer_email", Strategy: privacyv1alpha1.MaskHash}}},
				},
			},
		},
	}
	create(t, store)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), store) })

	// The guide's RoleBinding, in this namespace.
	block := guideBlocks(t, "test/portalexample applies the next block, in its own namespace")[0]
	var rb rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(block), &rb); err != nil {
		t.Fatalf("the guide's RoleBinding: %v", err)
	}
	if rb.RoleRef.Name != portalRole || len(rb.Subjects) != 1 || rb.Subjects[0].Name != portalServiceAccount || rb.Subjects[0].Namespace != portalNamespace {
		t.Fatalf("the guide's RoleBinding binds %+v to %+v", rb.RoleRef, rb.Subjects)
	}
	rb.Namespace = ns
	create(t, &rb)

	if !broken {
		eventually(t, func() (bool, string) {
			var got privacyv1alpha1.ClusterDataStore
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(store), &got); err != nil {
				return false, err.Error()
			}
			return meta.IsStatusConditionTrue(got.Status.Conditions, privacyv1alpha1.ConditionReady), fmt.Sprintf("store conditions %+v", got.Status.Conditions)
		})
	}
	return s
}

func (s *shop) exec(t *testing.T, stmt string, args ...any) {
	t.Helper()
	if _, err := s.db.Exec(stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func (s *shop) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// assertJaneErased: Jane's customer row deleted and her order masked; Max and the bystander
// untouched.
func (s *shop) assertJaneErased(t *testing.T) {
	t.Helper()
	if n := s.count(t, `SELECT COUNT(*) FROM customers WHERE email = ? OR id = '4711'`, janeEmail); n != 0 {
		t.Errorf("Jane's customer rows left: %d", n)
	}
	if n := s.count(t, `SELECT COUNT(*) FROM orders WHERE customer_email = ? OR address = '1 Main Street'`, janeEmail); n != 0 {
		t.Errorf("Jane's order not masked: %d", n)
	}
	if n := s.count(t, `SELECT COUNT(*) FROM orders WHERE address = ?`, privacyv1alpha1.RedactedMarker); n != 1 {
		t.Errorf("%d redacted orders, want Jane's one", n)
	}
	for _, email := range []string{maxEmail, bystanderEmail} {
		if n := s.count(t, `SELECT COUNT(*) FROM customers WHERE email = ?`, email); n != 1 {
			t.Errorf("customer rows of another person (%d) were touched", n)
		}
		if n := s.count(t, `SELECT COUNT(*) FROM orders WHERE customer_email = ? AND address LIKE '% Main Street'`, email); n != 1 {
			t.Errorf("orders of another person were touched")
		}
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// eventually polls cond until it holds; the go test timeout bounds it.
func eventually(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up: %s", why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// portalToken is a token of the portal's ServiceAccount, obtained as the guide does.
func portalToken(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(kubectl, "--kubeconfig", admin, "create", "token", portalServiceAccount, "-n", portalNamespace, "--duration=1h")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl create token: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func portalConfig(t *testing.T) *rest.Config {
	t.Helper()
	return &rest.Config{Host: env.Config.Host, BearerToken: portalToken(t), TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}}
}

func portalKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["portal"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["portal"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "portal"}
	kc.CurrentContext = "portal"
	path := filepath.Join(t.TempDir(), "portal.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func portalClient(t *testing.T) client.Client {
	t.Helper()
	c, err := newClient(portalConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertVerifiedDeletion checks, as an admin, the one DeletionRequest of the namespace.
func assertVerifiedDeletion(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	var drs privacyv1alpha1.DeletionRequestList
	if err := env.Client.List(ctx, &drs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(drs.Items) != 1 {
		t.Fatalf("%d DeletionRequests in %s", len(drs.Items), ns)
	}
	dr := drs.Items[0]
	for _, c := range []string{privacyv1alpha1.ConditionAccepted, privacyv1alpha1.ConditionErased, privacyv1alpha1.ConditionVerified, privacyv1alpha1.ConditionReady} {
		if !meta.IsStatusConditionTrue(dr.Status.Conditions, c) {
			t.Errorf("%s: %s is not True: %+v", dr.Name, c, dr.Status.Conditions)
		}
	}
	if dr.Status.Receipt == nil {
		t.Fatalf("%s has no receipt", dr.Name)
	}
	var cm corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
		t.Errorf("receipt of %s: %v", dr.Name, err)
	}
}

// assertMaxsExport checks an export: Max's records, and nobody else's. The export was stored
// gzipped, so the example decompressed it.
func assertMaxsExport(t *testing.T, ns string, export []byte) {
	t.Helper()
	var ars privacyv1alpha1.AccessRequestList
	if err := env.Client.List(context.Background(), &ars, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(ars.Items) != 1 || ars.Items[0].Status.Export == nil || ars.Items[0].Status.Export.Encoding != "gzip" {
		t.Errorf("want one AccessRequest with a gzipped export in %s: %+v", ns, ars.Items)
	}
	if !json.Valid(export) {
		t.Fatalf("export is not JSON:\n%s", export)
	}
	for _, want := range []string{maxEmail, "Max Mustermann", "2 Main Street", "Web shop", "Order fulfilment"} {
		if !bytes.Contains(export, []byte(want)) {
			t.Errorf("export lacks %q:\n%s", want, export)
		}
	}
	for _, other := range []string{"Jane", "jane.doe"} {
		if bytes.Contains(export, []byte(other)) {
			t.Errorf("export holds another person's data (%q):\n%s", other, export)
		}
	}
}

// The program of the guide, run as the portal: erasure verified with a receipt, export read.
func TestProgramAsThePortal(t *testing.T) {
	s := newShop(t, false)
	kubeconfig := portalKubeconfig(t, portalConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--kubeconfig", kubeconfig, "--namespace", s.ns, "--poll-interval", "200ms")
	cmd.Env = append(os.Environ(), asMain+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the example program failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	t.Logf("the program printed:\n%s", out)
	for _, want := range []string{"filed DeletionRequest erase-", "Verified=True (Verified)", "Ready=True (Completed)",
		"receipt: ConfigMap erase-", "filed AccessRequest access-", "Ready=True (ExportDelivered)", "bytes of JSON, deleted by the operator at "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The identifiers of the erased person appear nowhere in what the portal printed.
	if strings.Contains(out+stderr.String(), janeEmail) {
		t.Errorf("the program printed Jane's email:\n%s\n%s", out, stderr.String())
	}
	// The export follows the line that announces it.
	_, export, found := strings.Cut(out, " bytes of JSON")
	if found {
		_, export, found = strings.Cut(export, "\n")
	}
	if !found {
		t.Fatalf("no export in the output:\n%s", out)
	}
	assertMaxsExport(t, s.ns, []byte(export))
	s.assertJaneErased(t)
	assertVerifiedDeletion(t, s.ns)
}

// The curl and kubectl blocks of the guide, run with bash as they stand.
func TestCurlFlowOfTheGuide(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "base64", "sha256sum", "gunzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the guide's curl flow needs %s: install it (apt-get install curl jq)", tool)
		}
	}
	s := newShop(t, false)
	cfg := portalConfig(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, cfg.CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	server, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := strings.TrimSuffix(server.String(), "/")
	script := "set -euo pipefail\n" + strings.Join(guideBlocks(t, "test/portalexample runs the next block"), "\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "API="+api, "CA="+ca, "TOKEN="+cfg.BearerToken, "NS="+s.ns,
		"KUBECONFIG="+portalKubeconfig(t, cfg), "PATH="+filepath.Dir(kubectl)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the guide's shell blocks failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	t.Logf("the shell blocks printed:\n%s", out)
	for _, want := range []string{`"conditions"`, "deletionrequest.privacy.dsr.dev/erase-jane condition met"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	export, err := os.ReadFile(filepath.Join(dir, "export.json"))
	if err != nil {
		t.Fatal(err)
	}
	assertMaxsExport(t, s.ns, export)
	s.assertJaneErased(t)
	assertVerifiedDeletion(t, s.ns)
}

// The portal's role allows the flow and nothing else.
func TestPortalRoleIsLeastPrivilege(t *testing.T) {
	s := newShop(t, false)
	unbound := fmt.Sprintf("unbound-%d", shopCounter.Add(1))
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: unbound}})
	ctx := context.Background()
	c := portalClient(t)

	// Allowed: the flow.
	dr, err := requestErasure(ctx, c, s.ns, map[string]string{"email": maxEmail}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(dr), dr); err != nil {
		t.Errorf("get request: %v", err)
	}
	var status privacyv1alpha1.DeletionRequest
	if err := c.SubResource("status").Get(ctx, dr, &status); err != nil || status.Name != dr.Name {
		t.Errorf("get request status: %v", err)
	}
	var list privacyv1alpha1.DeletionRequestList
	if err := c.List(ctx, &list, client.InNamespace(s.ns)); err != nil || len(list.Items) != 1 {
		t.Errorf("list requests: %v (%d)", err, len(list.Items))
	}
	wc, err := client.NewWithWatch(portalConfig(t), client.Options{Scheme: c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &privacyv1alpha1.AccessRequestList{}, client.InNamespace(s.ns))
	if err != nil {
		t.Errorf("watch requests: %v", err)
	} else {
		w.Stop()
	}
	var ids corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: dr.Spec.Subject.IdentifiersSecretRef.Name}, &ids); err != nil {
		t.Errorf("get Secret: %v", err)
	}
	if _, err := requestAccess(ctx, c, s.ns, map[string]string{"email": maxEmail}, time.Now()); err != nil {
		t.Errorf("file an access request: %v", err)
	}

	// Forbidden: everything else.
	labelled := func(obj client.Object) client.Object {
		obj = obj.DeepCopyObject().(client.Object)
		obj.SetLabels(map[string]string{"touched": "yes"})
		return obj
	}
	for name, call := range map[string]func() error{
		"list Secrets":             func() error { return c.List(ctx, &corev1.SecretList{}, client.InNamespace(s.ns)) },
		"update a Secret":          func() error { return c.Update(ctx, labelled(&ids)) },
		"delete a Secret":          func() error { return c.Delete(ctx, &ids) },
		"update a request":         func() error { return c.Update(ctx, labelled(dr)) },
		"delete a request":         func() error { return c.Delete(ctx, dr) },
		"write a request's status": func() error { return c.Status().Update(ctx, dr) },
		"read stores":              func() error { return c.List(ctx, &privacyv1alpha1.DataStoreList{}, client.InNamespace(s.ns)) },
		"read cluster stores":      func() error { return c.List(ctx, &privacyv1alpha1.ClusterDataStoreList{}) },
		"create a store": func() error {
			return c.Create(ctx, &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "x"}})
		},
		"read ConfigMaps":            func() error { return c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(s.ns)) },
		"list requests cluster-wide": func() error { return c.List(ctx, &privacyv1alpha1.DeletionRequestList{}) },
		"file into an unbound ns": func() error {
			_, err := requestErasure(ctx, c, unbound, map[string]string{"email": maxEmail}, time.Now())
			return err
		},
		"read the operator's Secrets": func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "dsr-operator-salt"}, &corev1.Secret{})
		},
	} {
		if err := call(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: want Forbidden, got %v", name, err)
		}
	}
}

// waitUntilReady gives up on a request that failed for good, with the reason, instead of polling
// forever: here the identifiers Secret is changed after acceptance while the store is unavailable.
func TestWaitStopsWhenTheRequestFails(t *testing.T) {
	s := newShop(t, true)
	ctx := context.Background()
	c := portalClient(t)
	dr, err := requestErasure(ctx, c, s.ns, map[string]string{"email": janeEmail}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() (bool, string) {
		var got privacyv1alpha1.DeletionRequest
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(dr), &got); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(got.Status.Conditions, privacyv1alpha1.ConditionAccepted), fmt.Sprintf("phase %s, conditions %+v", got.Status.Phase, got.Status.Conditions)
	})
	var ids corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: dr.Spec.Subject.IdentifiersSecretRef.Name}, &ids); err != nil {
		t.Fatal(err)
	}
	ids.Data = map[string][]byte{"email": []byte(bystanderEmail)}
	if err := env.Client.Update(ctx, &ids); err != nil {
		t.Fatal(err)
	}

	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	err = waitUntilReady(waitCtx, c, dr, 200*time.Millisecond)
	if err == nil || waitCtx.Err() != nil || !strings.Contains(err.Error(), privacyv1alpha1.ReasonIdentifiersInvalid) {
		t.Fatalf("waitUntilReady: %v (context: %v)", err, waitCtx.Err())
	}
	if dr.Status.Phase != privacyv1alpha1.PhaseFailed {
		t.Errorf("phase %s", dr.Status.Phase)
	}
}
