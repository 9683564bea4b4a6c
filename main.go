// Command manager runs dsr-operator: it carries out data-subject-rights requests (DeletionRequest,
// AccessRequest) over the stores described by DataStores and ClusterDataStores.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/dsr-operator/dsr-operator/controllers"
	"github.com/dsr-operator/dsr-operator/internal/connector/sqlite"
	"github.com/dsr-operator/dsr-operator/internal/egress"
	"github.com/dsr-operator/dsr-operator/internal/export"
	"github.com/dsr-operator/dsr-operator/internal/metricsauth"
	"github.com/dsr-operator/dsr-operator/internal/operator"
)

func main() {
	var (
		metricsAddr, probeAddr, namespace string
		pprofAddr                         string
		leaderElect, secureMetrics        bool
		requestConcurrency, storeConc     int
		qps                               float64
		burst                             int
		receiptRecordsPeriod              time.Duration
		receiptSweepInterval              time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint (:8443 for https, :8080 for http, 0 to disable).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of the pprof endpoint for profiling (empty: off).")
	var enableSuppressionLists bool
	flag.BoolVar(&enableSuppressionLists, "enable-suppression-lists", true, "Run the SuppressionList controller and feed lists from DeletionRequests (false: lists are neither swept nor fed).")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one replica works at a time.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over https, with authentication and authorization by the API server.")
	flag.StringVar(&namespace, "operator-namespace", os.Getenv("POD_NAMESPACE"), "Namespace of the salt, the receipt signing key and the Secrets of ClusterDataStores.")
	var watchNamespaces string
	flag.StringVar(&watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to work in (the namespace-scoped install: Roles instead of ClusterRoles); empty: all.")
	flag.IntVar(&requestConcurrency, "request-concurrency", 16, "Requests of each kind worked on at once.")
	flag.IntVar(&storeConc, "store-concurrency", 8, "Stores one request works on at once.")
	flag.Float64Var(&qps, "kube-api-qps", 50, "Queries per second to the API server (client-side limit).")
	flag.IntVar(&burst, "kube-api-burst", 100, "Burst of queries to the API server (client-side limit).")
	flag.DurationVar(&receiptRecordsPeriod, "receipt-records-period", controllers.DefaultReceiptRecordsPeriod,
		"How long a deletion receipt is kept after it was issued, whether or not its request still exists; then the operator deletes it (default 24 months).")
	flag.DurationVar(&receiptSweepInterval, "receipt-sweep-interval", controllers.DefaultReceiptSweepInterval,
		"How often receipts past their records period are looked for and deleted.")
	phoneRegion := flag.String("default-phone-region", "", "Region (ISO 3166-1 alpha-2, e.g. US) that places phone numbers without a country code, for stores that set no spec.defaultRegion.")
	var storeDeny, storeAllow string
	var allowInsecureHTTP, enableSQLite bool
	flag.StringVar(&storeDeny, "store-deny-cidrs", egress.FormatPrefixes(egress.DefaultDeny), "Comma-separated CIDRs the operator never connects to on a store's behalf (link-local and cloud metadata by default; empty: none).")
	flag.StringVar(&storeAllow, "store-allow-cidrs", "", "Comma-separated CIDRs: when set, the only ones the operator connects to on a store's behalf (the deny list still wins).")
	flag.BoolVar(&allowInsecureHTTP, "allow-insecure-http", false, "Let every http store use a plain http:// URL (otherwise each opts in with spec.connection.allowInsecureHTTP).")
	flag.BoolVar(&enableSQLite, "enable-sqlite-stores", false, "Serve sqlite stores, which open any file path their author names in the operator's file system.")
	reportContext := flag.String("access-report-context", "", "YAML file with the controller, data protection officer and supervisory authorities that access reports name (the chart's accessReports values); empty: reports list them as missing.")
	spoolDir := flag.String("export-spool-dir", "", "Directory where an access export's records wait on disk, encrypted, while its files are rendered (empty: the temp directory, $TMPDIR or /tmp); needs about the size of the largest export being made at once.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	// At verbosity 8 and above client-go dumps request and response bodies: identifiers Secrets,
	// connection Secrets, exports. The operator never logs that verbosely, whatever the flag says.
	if zapOpts.Level != nil {
		zapOpts.Level = cappedLevel{zapOpts.Level}
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	// The runtime does not see a container's memory limit: with a soft limit below it the GC works
	// harder as the heap nears the limit instead of the kernel killing the Pod. GOMEMLIMIT wins.
	if limit, err := memlimit.SetGoMemLimitWithOpts(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup)); err != nil {
		log.Error(err, "Setting the Go memory limit from the cgroup")
	} else if limit > 0 {
		log.Info("Go memory limit set from the cgroup", "bytes", limit)
	}

	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics,
		// HTTP/2 is off: it exposes the server to the stream cancellation and rapid reset CVEs.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}}
	if secureMetrics {
		// Not controller-runtime's filter of the same name: that one links k8s.io/apiserver, which
		// doubles the binary and a third of the manager's memory.
		metricsOpts.FilterProvider = metricsauth.WithAuthenticationAndAuthorization
	}
	policy, err := egressPolicy(storeDeny, storeAllow, allowInsecureHTTP)
	if err != nil {
		log.Error(err, "invalid egress policy flags")
		os.Exit(1)
	}
	var inst *export.Installation
	if *reportContext != "" {
		if inst, err = export.LoadInstallation(*reportContext); err != nil {
			log.Error(err, "invalid --access-report-context")
			os.Exit(1)
		}
	}
	sqlite.SetEnabled(enableSQLite)
	ctx := ctrl.SetupSignalHandler()
	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(qps), burst
	mgr, pool, err := operator.New(ctx, cfg, operator.Options{
		EnableSuppressionLists: enableSuppressionLists,
		OperatorNamespace:      namespace,
		RequestConcurrency:     requestConcurrency,
		StoreConcurrency:       storeConc,
		ReceiptRecordsPeriod:   receiptRecordsPeriod,
		ReceiptSweepInterval:   receiptSweepInterval,
		DefaultPhoneRegion:     *phoneRegion,
		ReportContext:          inst,
		ExportSpoolDir:         *spoolDir,
		Egress:                 policy,
		Manager: manager.Options{
			Metrics:                       metricsOpts,
			HealthProbeBindAddress:        probeAddr,
			PprofBindAddress:              pprofAddr,
			LeaderElection:                leaderElect,
			LeaderElectionReleaseOnCancel: true,
			Cache:                         cache.Options{DefaultNamespaces: cacheNamespaces(watchNamespaces, namespace)},
		},
	})
	if err != nil {
		log.Error(err, "unable to set up the operator")
		os.Exit(1)
	}
	defer pool.Close()
	log.Info("starting manager")
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

// egressPolicy builds the store egress policy from the flags.
func egressPolicy(deny, allow string, allowInsecureHTTP bool) (*egress.Policy, error) {
	d, err := egress.ParsePrefixes(deny)
	if err != nil {
		return nil, fmt.Errorf("--store-deny-cidrs: %w", err)
	}
	a, err := egress.ParsePrefixes(allow)
	if err != nil {
		return nil, fmt.Errorf("--store-allow-cidrs: %w", err)
	}
	return &egress.Policy{Deny: d, Allow: a, AllowInsecureHTTP: allowInsecureHTTP}, nil
}

// mostVerbose is the most verbose level logged: -7 is logr's V(7).
const mostVerbose = zapcore.Level(-7)

type cappedLevel struct{ zapcore.LevelEnabler }

func (c cappedLevel) Enabled(l zapcore.Level) bool {
	return l >= mostVerbose && c.LevelEnabler.Enabled(l)
}

// cacheNamespaces limits the manager's cache (and so its list and watch calls) to the namespaces of
// a namespace-scoped install, plus the operator's own; nil, all namespaces, when none are given.
func cacheNamespaces(list, operatorNamespace string) map[string]cache.Config {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	namespaces := map[string]cache.Config{operatorNamespace: {}}
	for _, ns := range strings.Split(list, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces[ns] = cache.Config{}
		}
	}
	return namespaces
}
