// Package operator wires the manager: scheme, cache rules, the installation's salt and signing key,
// the store pool and every reconciler. main and the tests build the operator the same way.
package operator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/controllers"
	_ "github.com/dsr-operator/dsr-operator/internal/connector/all"
	"github.com/dsr-operator/dsr-operator/internal/egress"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/metrics"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/stores"
	"github.com/dsr-operator/dsr-operator/internal/subject"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// Options configure the operator.
type Options struct {
	// OperatorNamespace holds the salt, the receipt signing key and the Secrets of ClusterDataStores.
	OperatorNamespace string
	// RequestConcurrency is how many requests of each kind are worked on at once.
	RequestConcurrency int
	// EnableSuppressionLists runs the SuppressionList controller and feeds lists from
	// DeletionRequests. The manager binary sets it (--enable-suppression-lists, default true);
	// tests that do not need lists leave it off.
	EnableSuppressionLists bool
	// StoreConcurrency bounds how many stores one request works on at once.
	StoreConcurrency int
	// DefaultPhoneRegion places phone numbers without a country code for stores that set no
	// spec.defaultRegion (--default-phone-region).
	DefaultPhoneRegion string
	// MaxExportBytes bounds an access export (the most a Secret holds when 0).
	MaxExportBytes int
	// ReportContext is the installation's Art. 15 context of access reports (nil: none).
	ReportContext *export.Installation
	// ExportSpoolDir is where an access export's records wait on disk while it is rendered
	// (--export-spool-dir; os.TempDir() when empty). Leftovers of a crash are removed at start.
	ExportSpoolDir string
	// ReceiptRecordsPeriod is how long a receipt is kept after it was issued, whether or not its
	// request still exists (controllers.DefaultReceiptRecordsPeriod, 24 months, when 0).
	ReceiptRecordsPeriod time.Duration
	// ReceiptSweepInterval is how often receipts past their records period are looked for
	// (controllers.DefaultReceiptSweepInterval, an hour, when 0).
	ReceiptSweepInterval time.Duration
	// SecretPollInterval bounds how long a rotated store Secret goes unnoticed
	// (controllers.DefaultSecretPollInterval when 0): Secrets are read, never watched.
	SecretPollInterval time.Duration
	// Egress is the policy every store connection is checked against (nil: egress.Default()).
	Egress *egress.Policy
	// Manager options: metrics and probe addresses, leader election.
	Manager manager.Options
}

// Scheme returns the scheme with the core and privacy.dsr.dev types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(privacyv1alpha1.AddToScheme(s))
	return s
}

// New builds the manager with every reconciler. It creates the installation's salt and receipt
// signing key on first start.
func New(ctx context.Context, cfg *rest.Config, opts Options) (ctrl.Manager, *stores.Pool, error) {
	if opts.OperatorNamespace == "" {
		return nil, nil, fmt.Errorf("the operator namespace is required (--operator-namespace or POD_NAMESPACE)")
	}
	if err := normalize.ValidateRegion(opts.DefaultPhoneRegion); err != nil {
		return nil, nil, fmt.Errorf("--default-phone-region: %w", err)
	}
	if opts.RequestConcurrency <= 0 {
		opts.RequestConcurrency = 16
	}
	if err := export.CleanSpools(opts.ExportSpoolDir); err != nil {
		return nil, nil, fmt.Errorf("--export-spool-dir: %w", err)
	}
	if opts.StoreConcurrency <= 0 {
		opts.StoreConcurrency = 8
	}
	mo := opts.Manager
	if mo.Logger.GetSink() == nil {
		mo.Logger = ctrl.Log
	}
	mo.Logger = capVerbosity(mo.Logger)
	mo.Scheme = Scheme()
	if mo.LeaderElectionID == "" {
		mo.LeaderElectionID = "dsr-operator.privacy.dsr.dev"
	}
	if mo.LeaderElectionNamespace == "" {
		mo.LeaderElectionNamespace = opts.OperatorNamespace
	}
	// Secrets and ConfigMaps are read directly, never through the cache: the operator neither lists
	// nor watches Secrets, and holds no Secret of the cluster in memory.
	mo.Client.Cache = &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}}
	// managedFields are most of a cached object's size and the operator never reads them: with
	// 10,000 requests they would double the manager's memory. Requests are also compacted.
	mo.Cache.DefaultTransform = compactRequest
	// No controller watches Secrets or ConfigMaps: the store controllers poll their Secrets, and
	// receipt retention lists receipts' metadata (controllers.ReceiptRetention).
	if mo.Metrics.BindAddress == "" {
		mo.Metrics = metricsserver.Options{BindAddress: "0"}
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		return nil, nil, fmt.Errorf("creating manager: %w", err)
	}
	direct, err := client.New(cfg, client.Options{Scheme: mo.Scheme})
	if err != nil {
		return nil, nil, err
	}
	salt, err := subject.EnsureSalt(ctx, direct, opts.OperatorNamespace)
	if err != nil {
		return nil, nil, fmt.Errorf("installation salt: %w", err)
	}
	signer, err := receipt.EnsureSigner(ctx, direct, direct, opts.OperatorNamespace)
	if err != nil {
		return nil, nil, fmt.Errorf("receipt signing key: %w", err)
	}
	pool := stores.NewPool(mgr.GetAPIReader(), opts.OperatorNamespace, salt)
	pool.DefaultPhoneRegion = opts.DefaultPhoneRegion
	pool.Egress = opts.Egress
	shared := func(name string) controllers.Dependencies {
		return controllers.Dependencies{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder(name),
			Pool: pool, Salt: salt, StoreConcurrency: opts.StoreConcurrency,
		}
	}
	if err := (&controllers.DataStoreReconciler{Dependencies: shared("datastore-controller"), SecretPollInterval: opts.SecretPollInterval}).SetupWithManager(ctx, mgr); err != nil {
		return nil, nil, err
	}
	if err := (&controllers.ClusterDataStoreReconciler{Dependencies: shared("clusterdatastore-controller"), SecretPollInterval: opts.SecretPollInterval}).SetupWithManager(ctx, mgr); err != nil {
		return nil, nil, err
	}
	if err := mgr.Add(&controllers.ReceiptRetention{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(),
		Namespaces:    slices.Sorted(maps.Keys(mo.Cache.DefaultNamespaces)),
		RecordsPeriod: opts.ReceiptRecordsPeriod, Interval: opts.ReceiptSweepInterval}); err != nil {
		return nil, nil, err
	}
	var suppressionKey []byte
	if opts.EnableSuppressionLists {
		if suppressionKey, err = suppression.EnsureKey(ctx, direct, opts.OperatorNamespace); err != nil {
			return nil, nil, fmt.Errorf("suppression key: %w", err)
		}
	}
	if err := (&controllers.DeletionRequestReconciler{Dependencies: shared("deletionrequest-controller"), Signer: signer, SuppressionKey: suppressionKey}).SetupWithManager(ctx, mgr, opts.RequestConcurrency); err != nil {
		return nil, nil, err
	}
	if opts.EnableSuppressionLists {
		if err := (&controllers.SuppressionListReconciler{Dependencies: shared("suppressionlist-controller"), Key: suppressionKey}).SetupWithManager(mgr); err != nil {
			return nil, nil, err
		}
	}
	if err := (&controllers.AccessRequestReconciler{Dependencies: shared("accessrequest-controller"), MaxExportBytes: opts.MaxExportBytes, ReportContext: opts.ReportContext, SpoolDir: opts.ExportSpoolDir}).SetupWithManager(mgr, opts.RequestConcurrency); err != nil {
		return nil, nil, err
	}
	metrics.Register(mgr.GetClient())
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, nil, err
	}
	return mgr, pool, nil
}
