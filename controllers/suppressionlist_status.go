package controllers

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// suppressionReappeared counts sweeps that found data of someone on a list, by store type. The
// labels never name a person, a list entry or a value.
var suppressionReappeared = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "dsr_suppression_reappeared_total",
	Help: "Sweeps of a SuppressionList that found data of listed people in a store, by store type.",
}, []string{"store_type"})

// suppressionSweeps counts sweeps of a store by result (ok, failed, unsupported).
var suppressionSweeps = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "dsr_suppression_sweeps_total",
	Help: "Sweeps of one store for a SuppressionList, by store type and result.",
}, []string{"store_type", "result"})

func init() {
	crmetrics.Registry.MustRegister(suppressionReappeared, suppressionSweeps)
}

// recordSweep writes what the stores' sweeps found into the status, the DROP items' statuses and
// the report.
func (r *SuppressionListReconciler) recordSweep(ctx context.Context, s *suppressionScope, results []suppression.StoreResult) error {
	list := s.list
	list.Status.Stores = nil
	var failed, reappeared []string
	for _, res := range results {
		list.Status.Stores = append(list.Status.Stores, res.SuppressionStoreStatus)
		label := fmt.Sprintf("%s %s", res.Kind, res.Name)
		result := "ok"
		switch {
		case res.Failed:
			failed = append(failed, label)
			result = "failed"
		case !res.Supported:
			result = "unsupported"
		}
		suppressionSweeps.WithLabelValues(string(res.Type), result).Inc()
		if res.Reappeared > 0 {
			reappeared = append(reappeared, label)
			suppressionReappeared.WithLabelValues(string(res.Type)).Inc()
		}
	}
	s.sweepFailed = len(failed) > 0
	list.Status.Sweeps++
	list.Status.LastSweepTime = ptrTime(s.now)
	gen := list.Generation
	if len(reappeared) > 0 {
		what := "were erased"
		if list.Spec.Action != privacyv1alpha1.SuppressionErase {
			what = "were left in place (action report)"
		}
		msg := fmt.Sprintf("data of listed people was found in %s and %s", joinNames(reappeared), what)
		setCondition(&list.Status.Conditions, gen, privacyv1alpha1.ConditionDataReappeared, metav1.ConditionTrue, privacyv1alpha1.ReasonDataFound, msg)
		s.effect.warn(privacyv1alpha1.ReasonDataReappeared, "Sweep", msg)
	} else {
		msg := "the last sweep found no data of listed people outside legal holds"
		if list.Spec.Action == privacyv1alpha1.SuppressionOptOut {
			msg += " (action optOut: what it found is left in place and reported as opted out)"
		}
		setCondition(&list.Status.Conditions, gen, privacyv1alpha1.ConditionDataReappeared, metav1.ConditionFalse, privacyv1alpha1.ReasonNoneFound, msg)
	}
	if len(failed) > 0 {
		setCondition(&list.Status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonSweepFailed,
			"the sweep failed in "+joinNames(failed)+"; see status.stores; retried in "+sweepRetryDelay(s.interval).String())
		s.effect.warn(privacyv1alpha1.ReasonSweepFailed, "Sweep", "the sweep failed in "+joinNames(failed))
	} else if !s.sourceProblem {
		setCondition(&list.Status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonSwept,
			fmt.Sprintf("%d stores swept for %d entries", len(results), s.loaded.Set.Len()))
	}
	return r.finishSweep(ctx, s, len(failed) > 0)
}

func readyCondition(list *privacyv1alpha1.SuppressionList) *metav1.Condition {
	for i := range list.Status.Conditions {
		if list.Status.Conditions[i].Type == privacyv1alpha1.ConditionReady {
			return &list.Status.Conditions[i]
		}
	}
	return nil
}

// finishSweep ends the sweep in the list's storage: the checkpoint goes, and for a DROP list the
// items no store found become not found (5) after a complete sweep (after a sweep in which a
// store failed, that store was not looked at: they stay undecided), the marks of items found and
// left in place are cleared, and the report is written. Deleted (3) stays deleted.
func (r *SuppressionListReconciler) finishSweep(ctx context.Context, s *suppressionScope, incomplete bool) error {
	drop := s.list.Spec.Source.DropSecretRef != nil
	loaded, err := s.storage.UpdateFrom(ctx, s.list, s.loaded, func(l *suppression.Loaded) (string, bool, error) {
		changed := l.Index.Sweep != nil
		l.Index.Sweep = nil
		if drop {
			for i, e := range l.Set.Entries() {
				switch {
				case e.Status == suppression.StatusFound:
					l.Set.SetStatus(i, suppression.StatusNone)
					changed = true
				case e.Status == suppression.StatusNone && !incomplete:
					l.Set.SetStatus(i, suppression.StatusNotFound)
					changed = true
				}
			}
		}
		return l.Index.SourceDigest, changed, nil
	})
	if err != nil {
		return err
	}
	s.loaded = loaded
	if !drop {
		return nil
	}
	return r.writeReport(ctx, s)
}

// writeReport writes the report: one line per item, "ID,Status", sorted by ID, in the layout of
// a DROP status upload, into as many Secrets as it needs (suppressionlist_report.go). Items no
// sweep has decided yet are left out.
func (r *SuppressionListReconciler) writeReport(ctx context.Context, s *suppressionScope) error {
	list := s.list
	var lines []string
	for _, e := range s.loaded.Set.Entries() {
		if e.Status.Reportable() {
			lines = append(lines, e.ID+","+strconv.Itoa(int(e.Status.Base())))
		}
	}
	sort.Strings(lines)
	store := &reportStore{client: r.Client, reader: r.APIReader, scheme: r.Scheme(), list: list, maxBytes: suppression.MaxChunkBytes}
	name, err := store.write(ctx, lines)
	if err != nil {
		return err
	}
	list.Status.ReportSecretName = name
	return nil
}
