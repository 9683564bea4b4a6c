// Command manager runs dsr-operator: it carries out data-subject-rights requests (DeletionRequest,
// AccessRequest) over the stores described by DataStores and ClusterDataStores.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"strings"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

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
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint (:8443 for https, :8080 for http, 0 to disable).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of the pprof endpoint for profiling (empty: off).")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one replica works at a time.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over https, with authentication and authorization by the API server.")
	flag.StringVar(&namespace, "operator-namespace", os.Getenv("POD_NAMESPACE"), "Namespace of the salt, the receipt signing key and the Secrets of ClusterDataStores.")
	var watchNamespaces string
	flag.StringVar(&watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to work in (the namespace-scoped install: Roles instead of ClusterRoles); empty: all.")
	flag.IntVar(&requestConcurrency, "request-concurrency", 16, "Requests of each kind worked on at once.")
	flag.IntVar(&storeConc, "store-concurrency", 8, "Stores one request works on at once.")
	flag.Float64Var(&qps, "kube-api-qps", 50, "Queries per second to the API server (client-side limit).")
	flag.IntVar(&burst, "kube-api-burst", 100, "Burst of queries to the API server (client-side limit).")
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
	ctx := ctrl.SetupSignalHandler()
	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(qps), burst
	mgr, pool, err := operator.New(ctx, cfg, operator.Options{
		OperatorNamespace:  namespace,
		RequestConcurrency: requestConcurrency,
		StoreConcurrency:   storeConc,
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
