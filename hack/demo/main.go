// Command demo shows dsr-operator at work on a local control plane (make demo): it starts throwaway
// PostgreSQL and Redis servers seeded with fictional customers, runs the operator, files a deletion
// and an access request, waits for them and prints what happened, store by store. The portal knows
// only each person's email: their orders, order items and Redis keys are found through linked data
// (customers.id provided as customerId, orders.id as orderId).
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

const operatorNamespace = "dsr-system"

func main() {
	// controller-runtime registers --kubeconfig itself.
	keep := flag.Bool("keep-running", false, "keep the databases and the operator running after the summary, until Ctrl-C")
	timeout := flag.Duration("timeout", 3*time.Minute, "how long to wait for the requests")
	flag.Parse()
	kubeconfig := "bin/dev/kubeconfig"
	if f := flag.Lookup("kubeconfig"); f != nil && f.Value.String() != "" {
		kubeconfig = f.Value.String()
	}
	if err := run(kubeconfig, *keep, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(kubeconfig string, keep bool, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The operator's own logs would drown the story; the summary says what happened.
	ctrl.SetLogger(logr.Discard())

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s (start the dev cluster with make dev-cluster): %w", kubeconfig, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return err
	}

	say("starting a throwaway PostgreSQL and Redis on loopback")
	pg, err := teststore.StartPostgres(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = pg.Close() }()
	rd, err := teststore.StartRedis(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = rd.Close() }()
	dsn, err := pg.CreateDatabase(ctx, "shop")
	if err != nil {
		return err
	}
	say("seeding the shop database (customers -> orders -> order_item) and the session cache with three fictional customers")
	if err := seedPostgres(ctx, dsn); err != nil {
		return err
	}
	if err := seedRedis(ctx, rd.URL(0)); err != nil {
		return err
	}

	ns := "demo-" + time.Now().UTC().Format("150405")
	say("creating namespace %s, the connection Secrets and two DataStores (postgres, redis)", ns)
	for _, name := range []string{operatorNamespace, ns} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	for _, obj := range dataStores(ns, dsn, rd.URL(0)) {
		if err := c.Create(ctx, obj); err != nil {
			return err
		}
	}

	say("starting the operator")
	mgr, pool, err := operator.New(ctx, cfg, operator.Options{OperatorNamespace: operatorNamespace,
		Manager: manager.Options{Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"}})
	if err != nil {
		return err
	}
	defer pool.Close()
	mgrCtx, stopMgr := context.WithCancel(ctx)
	defer stopMgr()
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()

	say("filing a DeletionRequest for Jane Doe (GDPR Art. 17) and an AccessRequest for Max Mustermann (Art. 15), knowing only their emails")
	for _, obj := range requests(ns) {
		if err := c.Create(ctx, obj); err != nil {
			return err
		}
	}

	say("waiting for the erasure to be verified and the export to be delivered")
	var dr privacyv1alpha1.DeletionRequest
	var ar privacyv1alpha1.AccessRequest
	deadline := time.Now().Add(timeout)
	for {
		_ = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "erase-jane"}, &dr)
		_ = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "access-max"}, &ar)
		if meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionReady) &&
			meta.IsStatusConditionTrue(ar.Status.Conditions, privacyv1alpha1.ConditionReady) {
			break
		}
		if time.Now().After(deadline) {
			printDeletion(&dr)
			return fmt.Errorf("the requests did not finish within %s (see the conditions above)", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-mgrDone:
			return fmt.Errorf("the operator stopped: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}

	fmt.Println()
	printDeletion(&dr)
	if err := printReceipt(ctx, c, &dr); err != nil {
		return err
	}
	if err := printRows(ctx, dsn, rd.URL(0)); err != nil {
		return err
	}
	if err := printExport(ctx, c, &ar); err != nil {
		return err
	}
	report, err := writeReport(ctx, c, &ar)
	if err != nil {
		return err
	}
	fmt.Printf("\nThe HTML report, the letter Max would read: %s\n", report)

	fmt.Printf(`
Explore (the requests stay in the dev cluster):
  export KUBECONFIG=%[1]s
  kubectl get deletionrequests,accessrequests,datastores -n %[2]s
  kubectl get deletionrequest erase-jane -n %[2]s -o yaml
  bin/kubectl-dsr status erase-jane -n %[2]s          (make build builds the plugin)
  bin/kubectl-dsr receipt verify erase-jane -n %[2]s
  bin/kubectl-dsr export access-max -n %[2]s --dir ./max   (the JSON document and the HTML report)
  bin/kubectl-dsr discover --secret %[2]s/shop-postgres   (with --keep-running: a mapping proposed from the catalog)
Tear down:
  make dev-cluster-down
`, kubeconfig, ns)
	if keep {
		say("the databases and the operator keep running; Ctrl-C stops them")
		<-ctx.Done()
	} else {
		fmt.Println("The demo's databases and operator stop now; run `make demo DEMO_FLAGS=--keep-running` to keep them.")
	}
	stopMgr()
	return <-mgrDone
}

var customers = []struct{ id, email, name string }{
	{"1001", "jane.doe@example.com", "Jane Doe"},
	{"1002", "max.mustermann@example.org", "Max Mustermann"},
	{"1003", "ana.silva@example.net", "Ana Silva"},
}

func seedPostgres(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`,
		`CREATE TABLE orders (id SERIAL PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id), shipping_address TEXT, total_cents INT)`,
		`CREATE INDEX ON orders (customer_id)`,
		`CREATE TABLE order_item (id SERIAL PRIMARY KEY, order_id INT NOT NULL REFERENCES orders (id), sku TEXT NOT NULL, quantity INT)`,
		`CREATE INDEX ON order_item (order_id)`,
		`CREATE TABLE invoices (id SERIAL PRIMARY KEY, customer_email TEXT NOT NULL, amount_cents INT)`,
		`CREATE INDEX ON invoices (customer_email)`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	for i, cu := range customers {
		if _, err := db.ExecContext(ctx, `INSERT INTO customers VALUES ($1, $2, $3)`, cu.id, cu.email, cu.name); err != nil {
			return err
		}
		for j := 0; j <= i%2; j++ {
			var orderID int
			if err := db.QueryRowContext(ctx, `INSERT INTO orders (customer_id, shipping_address, total_cents) VALUES ($1, $2, $3) RETURNING id`,
				cu.id, fmt.Sprintf("%d Example Street, Springfield", 10+i), 1999+j*500).Scan(&orderID); err != nil {
				return err
			}
			for _, sku := range []string{"sku-42", "sku-7"} {
				if _, err := db.ExecContext(ctx, `INSERT INTO order_item (order_id, sku, quantity) VALUES ($1, $2, 1)`, orderID, sku); err != nil {
					return err
				}
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO invoices (customer_email, amount_cents) VALUES ($1, 1999)`, cu.email); err != nil {
			return err
		}
	}
	return nil
}

func seedRedis(ctx context.Context, url string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	for _, cu := range customers {
		if err := rdb.HSet(ctx, "session:"+cu.id+":web", "email", cu.email, "ip", "192.0.2.10").Err(); err != nil {
			return err
		}
		if err := rdb.RPush(ctx, "cart:"+cu.id, "sku-42", "sku-7").Err(); err != nil {
			return err
		}
	}
	return nil
}

// secretType labels a Secret for the operator: it reads only Secrets so marked.
func secretType(value string) map[string]string {
	return map[string]string{privacyv1alpha1.SecretTypeLabel: value}
}

func dataStores(ns, dsn, redisURL string) []client.Object {
	return []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-postgres", Labels: secretType(privacyv1alpha1.SecretTypeConnection)}, StringData: map[string]string{"dsn": dsn}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-redis", Labels: secretType(privacyv1alpha1.SecretTypeConnection)}, StringData: map[string]string{"url": redisURL}},
		&privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-postgres"}, Spec: privacyv1alpha1.DataStoreSpec{
			Type:       privacyv1alpha1.StoreTypePostgres,
			Connection: privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "shop-postgres", Key: "dsn"}},
			// Linked data: the email finds the customer, whose id (customerId) finds the orders,
			// whose ids (orderId) find the order items; customerId also finds the Redis keys. The
			// tables are named unqualified, as the catalog's foreign keys of the default schema are:
			// with "public.customers" the erase order did not see the keys (SQLSTATE 23503).
			Tables: []privacyv1alpha1.TableMapping{
				{Name: "customers", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{{Column: "email", Identifier: "email"}},
					Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "customerId", Column: "id"}}},
				{Name: "orders", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_id", Identifier: "customerId"}},
					Provides: []privacyv1alpha1.ColumnProvide{{Identifier: "orderId", Column: "id"}}},
				{Name: "order_item", Action: privacyv1alpha1.ActionDelete, Match: []privacyv1alpha1.ColumnMatch{{Column: "order_id", Identifier: "orderId"}}},
				{Name: "invoices", Action: privacyv1alpha1.ActionRetain, Match: []privacyv1alpha1.ColumnMatch{{Column: "customer_email", Identifier: "email"}},
					RetainReason: "Invoices are kept for the statutory tax retention period (GDPR Art. 17(3)(b))."},
			},
			Description: "Customer accounts, orders and invoices of the web shop.", Purposes: []string{"Performing the purchase contract", "Customer support"},
			DataCategories: []string{"Contact details", "Order history"}, Retention: "Accounts until deleted; invoices 10 years.", Recipients: []string{"Payment provider"},
		}},
		&privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-redis"}, Spec: privacyv1alpha1.DataStoreSpec{
			Type:        privacyv1alpha1.StoreTypeRedis,
			Connection:  privacyv1alpha1.Connection{SecretRef: &privacyv1alpha1.SecretKeySelector{Name: "shop-redis", Key: "url"}},
			Keys:        []privacyv1alpha1.KeyMapping{{Pattern: "session:{customerId}:*", Action: privacyv1alpha1.KeyActionDelete}, {Pattern: "cart:{customerId}", Action: privacyv1alpha1.KeyActionDelete}},
			Description: "Session cache and shopping carts.", DataCategories: []string{"Session data", "Shopping cart"}, Retention: "Sessions expire after 30 days.",
		}},
	}
}

func requests(ns string) []client.Object {
	subject := func(name string) privacyv1alpha1.RequestSpecCommon {
		return privacyv1alpha1.RequestSpecCommon{Regulation: privacyv1alpha1.RegulationGDPR,
			Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: name}}}
	}
	return []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "jane-identifiers", Labels: secretType(privacyv1alpha1.SecretTypeIdentifiers)},
			StringData: map[string]string{"email": customers[0].email}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "max-identifiers", Labels: secretType(privacyv1alpha1.SecretTypeIdentifiers)},
			StringData: map[string]string{"email": customers[1].email}},
		&privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "erase-jane"},
			Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: subject("jane-identifiers")}},
		&privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "access-max"},
			Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: subject("max-identifiers"),
				Formats: []privacyv1alpha1.ExportFormat{privacyv1alpha1.ExportFormatJSON, privacyv1alpha1.ExportFormatHTML}}},
	}
}

func printDeletion(dr *privacyv1alpha1.DeletionRequest) {
	fmt.Printf("DeletionRequest %s/%s: phase %s\n", dr.Namespace, dr.Name, dr.Status.Phase)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  STORE\tTYPE\tPHASE\tERASED\tMASKED\tRETAINED\tREMAINING\tNOTE")
	for _, s := range dr.Status.Stores {
		note := s.Message
		for _, r := range s.RetainedReasons {
			note += fmt.Sprintf("retained %d in %s: %s", r.Records, r.Location, r.Reason)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Type, s.Phase, s.Erased, s.Masked, s.Retained, s.Remaining, note)
	}
	_ = tw.Flush()
	fmt.Println("  Conditions:")
	for _, c := range dr.Status.Conditions {
		fmt.Printf("    %-17s %-5s %-15s %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

func printReceipt(ctx context.Context, c client.Client, dr *privacyv1alpha1.DeletionRequest) error {
	var cm, pub corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: dr.Namespace, Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
		return err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: receipt.PublicKeyConfigMapName}, &pub); err != nil {
		return err
	}
	key, err := receipt.ParsePublicKey([]byte(pub.Data[receipt.KeyPEM]))
	if err != nil {
		return err
	}
	data := []byte(cm.Data[receipt.DataKey])
	rc, err := receipt.Verify(data, []byte(cm.Data[receipt.SignatureKey]), key)
	switch {
	case err != nil:
		fmt.Printf("\nReceipt %s: DOES NOT VERIFY: %v\n", cm.Name, err)
	case receipt.Digest(data) != dr.Status.Receipt.SHA256 || rc.Request.UID != string(dr.UID):
		fmt.Printf("\nReceipt %s: signature valid but it does not match the request\n", cm.Name)
	default:
		fmt.Printf("\nReceipt %s: signature verified with key %s (ConfigMap %s/%s); %s; subject %s\n",
			cm.Name, rc.KeyID, operatorNamespace, receipt.PublicKeyConfigMapName, dr.Status.Receipt.SHA256, rc.SubjectDigest)
	}
	return nil
}

func printRows(ctx context.Context, dsn, redisURL string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Println("\nWhat the shop database holds now:")
	rows, err := db.QueryContext(ctx, `SELECT 'customer', email, name FROM customers UNION ALL
		SELECT 'order', c.email, o.shipping_address FROM orders o JOIN customers c ON c.id = o.customer_id UNION ALL
		SELECT 'item', c.email, 'order ' || i.order_id || ' ' || i.sku FROM order_item i
			JOIN orders o ON o.id = i.order_id JOIN customers c ON c.id = o.customer_id UNION ALL
		SELECT 'invoice', customer_email, amount_cents::text FROM invoices ORDER BY 1, 2, 3`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var kind, who, what string
		if err := rows.Scan(&kind, &who, &what); err != nil {
			return err
		}
		if len(who) > 40 {
			who = who[:40] + "..."
		}
		fmt.Printf("  %-8s %-44s %s\n", kind, who, what)
	}
	opts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "*").Result() // three customers' worth of keys: fine for a demo
	if err != nil {
		return err
	}
	fmt.Printf("  redis keys: %s\n", strings.Join(keys, " "))
	return rows.Err()
}

func printExport(ctx context.Context, c client.Client, ar *privacyv1alpha1.AccessRequest) error {
	ref := ar.Status.Export
	if ref == nil {
		return errors.New("the access request has no export")
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ar.Namespace, Name: ref.SecretName}, &s); err != nil {
		return err
	}
	raw := s.Data[ref.Key]
	check := "matches"
	if receipt.Digest(raw) != ref.SHA256 {
		check = "DOES NOT MATCH"
	}
	if ref.Encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return err
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	fmt.Printf("\nAccessRequest %s/%s: export in Secret %s, key %s (%d bytes, %s; sha256 %s the status), expires %s\n",
		ar.Namespace, ar.Name, ref.SecretName, ref.Key, ref.Bytes, ref.Encoding, check, ref.ExpiresAt.UTC().Format(time.RFC3339))
	pretty, _ := json.MarshalIndent(doc, "  ", "  ")
	lines := strings.Split(string(pretty), "\n")
	if len(lines) > 80 {
		lines = append(lines[:80], fmt.Sprintf("  ... (%d more lines)", len(lines)-80))
	}
	fmt.Println("  " + strings.Join(lines, "\n"))
	return nil
}

// writeReport writes the export's HTML report, its digest checked, into a new private temporary
// directory and returns its path.
func writeReport(ctx context.Context, c client.Client, ar *privacyv1alpha1.AccessRequest) (string, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ar.Namespace, Name: ar.Status.Export.SecretName}, &s); err != nil {
		return "", err
	}
	for _, f := range ar.Status.Export.Files {
		if f.Format != privacyv1alpha1.ExportFormatHTML {
			continue
		}
		raw := s.Data[f.Key]
		if receipt.Digest(raw) != f.SHA256 {
			return "", fmt.Errorf("the report in Secret %s does not match its digest in the status", s.Name)
		}
		if f.Encoding == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				return "", err
			}
			if raw, err = io.ReadAll(zr); err != nil {
				return "", err
			}
		}
		dir, err := os.MkdirTemp("", "dsr-demo-report-")
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, "report.html")
		return path, os.WriteFile(path, raw, 0o600)
	}
	return "", errors.New("the export has no HTML report")
}
