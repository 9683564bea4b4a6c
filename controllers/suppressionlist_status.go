package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/requests"
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

// reportKey is the key of the DROP status report in the report Secret.
const reportKey = "report.csv"

// recordSweep writes what the stores' sweeps found into the status, the DROP items' statuses and
// the report.
func (r *SuppressionListReconciler) recordSweep(ctx context.Context, s *suppressionScope, results []storeSweep) error {
	list := s.list
	list.Status.Stores = nil
	var failed, reappeared []string
	for _, res := range results {
		list.Status.Stores = append(list.Status.Stores, res.status)
		label := fmt.Sprintf("%s %s", res.status.Kind, res.status.Name)
		result := "ok"
		switch {
		case res.failed:
			failed = append(failed, label)
			result = "failed"
		case !res.status.Supported:
			result = "unsupported"
		}
		suppressionSweeps.WithLabelValues(string(res.status.Type), result).Inc()
		if res.reappeared > 0 {
			reappeared = append(reappeared, label)
			suppressionReappeared.WithLabelValues(string(res.status.Type)).Inc()
		}
	}
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
		setCondition(&list.Status.Conditions, gen, privacyv1alpha1.ConditionDataReappeared, metav1.ConditionFalse, privacyv1alpha1.ReasonNoneFound, "the last sweep found no data of listed people outside legal holds")
	}
	if len(failed) > 0 {
		setCondition(&list.Status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionFalse, privacyv1alpha1.ReasonSweepFailed,
			"the sweep failed in "+joinNames(failed)+"; see status.stores")
		s.effect.warn(privacyv1alpha1.ReasonSweepFailed, "Sweep", "the sweep failed in "+joinNames(failed))
	} else if !s.sourceProblem {
		setCondition(&list.Status.Conditions, gen, privacyv1alpha1.ConditionReady, metav1.ConditionTrue, privacyv1alpha1.ReasonSwept,
			fmt.Sprintf("%d stores swept for %d entries", len(results), s.loaded.Set.Len()))
	}
	if list.Spec.Source.DropSecretRef == nil {
		return nil
	}
	return r.recordDropStatuses(ctx, s, results, len(failed) > 0)
}

func readyCondition(list *privacyv1alpha1.SuppressionList) *metav1.Condition {
	for i := range list.Status.Conditions {
		if list.Status.Conditions[i].Type == privacyv1alpha1.ConditionReady {
			return &list.Status.Conditions[i]
		}
	}
	return nil
}

// recordDropStatuses moves each DROP item's status on: deleted (3) once any store erased its
// data, exempted (2) when every match was under a legal hold, not found (5) when a complete
// sweep found nothing and nothing was decided before. A deleted item stays deleted. After a
// sweep in which a store failed, items are not marked not found: that store was not looked at.
func (r *SuppressionListReconciler) recordDropStatuses(ctx context.Context, s *suppressionScope, results []storeSweep, incomplete bool) error {
	set := s.loaded.Set
	statuses := make([]suppression.Status, set.Len())
	for i, e := range set.Entries() {
		statuses[i] = e.Status
	}
	for _, res := range results {
		for _, i := range res.exemptEntries {
			if statuses[i] != suppression.StatusDeleted {
				statuses[i] = suppression.StatusExempted
			}
		}
	}
	found := map[int]bool{}
	for _, res := range results {
		for _, i := range res.erasedEntries {
			statuses[i] = suppression.StatusDeleted
		}
		for _, i := range res.foundEntries {
			found[i] = true
		}
	}
	changed := false
	for i, e := range set.Entries() {
		if statuses[i] == suppression.StatusNone && !incomplete && !found[i] {
			statuses[i] = suppression.StatusNotFound
		}
		if statuses[i] != e.Status {
			changed = true
		}
	}
	if changed {
		loaded, err := s.storage.Update(ctx, s.list, func(l *suppression.Loaded) (string, bool, error) {
			if l.Set.Len() != set.Len() {
				return "", false, suppression.ErrConflict
			}
			for i := range statuses {
				l.Set.SetStatus(i, statuses[i])
			}
			return l.Index.SourceDigest, true, nil
		})
		if err != nil {
			return err
		}
		s.loaded = loaded
	}
	return r.writeReport(ctx, s)
}

// writeReport writes the report Secret: one line per item, "ID,Status", sorted by ID, in the
// layout of a DROP status upload. Items no sweep has decided yet are left out.
func (r *SuppressionListReconciler) writeReport(ctx context.Context, s *suppressionScope) error {
	list := s.list
	var lines []string
	for _, e := range s.loaded.Set.Entries() {
		if e.Status != suppression.StatusNone {
			lines = append(lines, fmt.Sprintf("%s,%d", e.ID, e.Status))
		}
	}
	sort.Strings(lines)
	var buf bytes.Buffer
	buf.WriteString("ID,Status\n")
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	if buf.Len() > suppression.MaxChunkBytes {
		return errors.New("the DROP report is larger than one Secret holds; reports of more than about 30,000 items are not supported yet")
	}
	name := requests.DerivedName(list.Name, "-drop-report")
	labels := requests.RequestLabels(suppression.LabelList, list.Name, "")
	delete(labels, requests.LabelRequestUID)
	labels[suppression.LabelListUID] = string(list.UID)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: list.Namespace, Name: name, Labels: labels},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{reportKey: buf.Bytes()}}
	if err := controllerutil.SetControllerReference(list, secret, r.Scheme()); err != nil {
		return err
	}
	err := r.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		var existing corev1.Secret
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
			return err
		}
		if !metav1.IsControlledBy(&existing, list) {
			return fmt.Errorf("secret %s exists and does not belong to this SuppressionList", name)
		}
		existing.Data = secret.Data
		err = r.Update(ctx, &existing)
	}
	if err != nil {
		return fmt.Errorf("writing the DROP report: %w", err)
	}
	list.Status.ReportSecretName = name
	return nil
}
