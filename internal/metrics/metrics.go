// Package metrics defines the operator's Prometheus metrics, registered with controller-runtime's
// registry so they are served on the manager's metrics endpoint. Labels never hold identifiers, nor
// request or store names (unbounded cardinality): only kinds, phases, store types and results.
package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

var (
	// TimeToVerified is the time from a deletion request's receivedAt to its first clean verification.
	TimeToVerified = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "dsr_request_time_to_verified_seconds",
		Help: "Time from a deletion request's receivedAt to its first clean verification.",
		// From a second (a fast store) to the 45 days of the longest deadline.
		Buckets: []float64{1, 5, 15, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600, 30 * 24 * 3600, 45 * 24 * 3600},
	})
	// StoreOperations counts connector calls by store type, operation and result.
	StoreOperations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsr_store_operations_total",
		Help: "Connector operations by store type, operation (check, collect, erase, verify) and result (success, unavailable, failed, pending).",
	}, []string{"store_type", "operation", "result"})
	// Reappearances counts re-verifications that found a subject's data back in a store.
	Reappearances = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dsr_reappearances_total",
		Help: "Re-verifications that found erased data back in a store, by store type.",
	}, []string{"store_type"})
)

// Register adds the metrics to controller-runtime's registry, with a collector that reads the
// request gauges from the manager's cache at scrape time (so they are right after a restart).
// Registering again (a second manager in one process, as in tests) switches the gauges to the
// newer reader.
func Register(c client.Reader) {
	collector.mu.Lock()
	collector.reader = c
	collector.mu.Unlock()
	registerOnce.Do(func() {
		crmetrics.Registry.MustRegister(TimeToVerified, StoreOperations, Reappearances, collector)
	})
}

var (
	registerOnce sync.Once
	collector    = &requestCollector{now: time.Now}
)

var (
	requestsDesc = prometheus.NewDesc("dsr_requests",
		"Requests in the cluster by kind and phase.", []string{"kind", "phase"}, nil)
	overdueDesc = prometheus.NewDesc("dsr_requests_overdue",
		"Unfinished requests whose regulation deadline has passed, by kind.", []string{"kind"}, nil)
)

type requestCollector struct {
	mu     sync.Mutex
	reader client.Reader
	now    func() time.Time
}

func (c *requestCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- overdueDesc
}

func (c *requestCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := c.now()
	c.mu.Lock()
	reader := c.reader
	c.mu.Unlock()
	var dels privacyv1alpha1.DeletionRequestList
	if err := reader.List(ctx, &dels); err == nil {
		phases := map[string]float64{}
		overdue := 0.0
		for i := range dels.Items {
			dr := &dels.Items[i]
			phases[phaseOf(dr.Status.Phase)]++
			if isOverdue(&dr.Status.RequestStatusCommon, now, dr.IsFinished()) {
				overdue++
			}
		}
		emit(ch, "DeletionRequest", phases, overdue)
	}
	var accs privacyv1alpha1.AccessRequestList
	if err := reader.List(ctx, &accs); err == nil {
		phases := map[string]float64{}
		overdue := 0.0
		for i := range accs.Items {
			ar := &accs.Items[i]
			phases[phaseOf(ar.Status.Phase)]++
			if isOverdue(&ar.Status.RequestStatusCommon, now, ar.IsFinished()) {
				overdue++
			}
		}
		emit(ch, "AccessRequest", phases, overdue)
	}
}

func phaseOf(p privacyv1alpha1.RequestPhase) string {
	if p == "" {
		return string(privacyv1alpha1.PhasePending)
	}
	return string(p)
}

// isOverdue: a request that is not finished (see IsFinished on the API types) past its deadline.
func isOverdue(st *privacyv1alpha1.RequestStatusCommon, now time.Time, finished bool) bool {
	return !finished && st.Deadline != nil && now.After(st.Deadline.Time)
}

func emit(ch chan<- prometheus.Metric, kind string, phases map[string]float64, overdue float64) {
	for phase, n := range phases {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, n, kind, phase)
	}
	ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, overdue, kind)
}

// Result names the outcome of a store operation for the result label.
func Result(err error, pending bool, transient func(error) bool) string {
	switch {
	case err == nil && pending:
		return "pending"
	case err == nil:
		return "success"
	case transient(err):
		return "unavailable"
	default:
		return "failed"
	}
}
