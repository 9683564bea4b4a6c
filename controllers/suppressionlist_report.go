package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/requests"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// reportPartSlots: the parts of a split report alternate between two sets of names from one
// sweep to the next. The parts the current index names are never touched while the next
// sweep's parts are written, so a reader that follows the index sees one sweep's report, whole.
var reportPartSlots = [2]string{"a", "b"}

// reportStore writes a list's DROP report into Secrets: by name only (the manager may not list
// Secrets), every Secret controlled by the list.
type reportStore struct {
	client client.Client
	reader client.Reader
	scheme *runtime.Scheme
	list   *privacyv1alpha1.SuppressionList
	// maxBytes bounds each stored value (suppression.MaxChunkBytes; tests lower it).
	maxBytes int
}

func reportIndexName(list string) string { return requests.DerivedName(list, "-drop-report") }

func reportPartName(list, slot string, n int) string {
	return requests.DerivedName(list, "-drop-report-"+slot+strconv.Itoa(n))
}

// write stores the report of lines (sorted "ID,Status") and returns the name of its first
// Secret. A report that fits is that Secret's report.csv, as before reports were split. A larger
// one is written part by part into the slot the current index does not use, then the index goes
// into the first Secret, last; then the parts no index names any more are deleted.
func (s *reportStore) write(ctx context.Context, lines []string) (string, error) {
	enc, err := suppression.EncodeReport(lines, s.maxBytes)
	if err != nil {
		return "", err
	}
	name := reportIndexName(s.list.Name)
	current, err := s.get(ctx, name)
	if err != nil {
		return "", err
	}
	slot := reportPartSlots[0]
	if current != nil {
		if idx, err := suppression.ParseReportIndex(current.Data[suppression.ReportIndexKey]); err == nil && len(idx.Parts) > 0 &&
			idx.Parts[0].Name == reportPartName(s.list.Name, reportPartSlots[0], 1) {
			slot = reportPartSlots[1]
		}
	}
	data := map[string][]byte{suppression.ReportKey: enc.Single}
	if enc.Single == nil {
		for i, part := range enc.Parts {
			partName := reportPartName(s.list.Name, slot, i+1)
			enc.Index.Parts[i].Name = partName
			if err := s.put(ctx, partName, map[string][]byte{suppression.ReportPartKey: part}); err != nil {
				return "", err
			}
		}
		index, err := json.Marshal(enc.Index)
		if err != nil {
			return "", err
		}
		data = map[string][]byte{suppression.ReportIndexKey: index}
	}
	if err := s.put(ctx, name, data); err != nil {
		return "", err
	}
	for _, sl := range reportPartSlots {
		keep := 0
		if enc.Single == nil && sl == slot {
			keep = len(enc.Parts)
		}
		if err := s.deleteFrom(ctx, sl, keep+1); err != nil {
			return "", err
		}
	}
	return name, nil
}

// deleteFrom deletes the parts of slot from number n on. Parts are numbered without gaps from 1,
// and one sweep writes them in order, so the first missing one ends the run: this also finds the
// parts of a sweep that stopped before writing its index.
func (s *reportStore) deleteFrom(ctx context.Context, slot string, n int) error {
	for ; ; n++ {
		existing, err := s.get(ctx, reportPartName(s.list.Name, slot, n))
		if err != nil || existing == nil {
			return err
		}
		if err := s.client.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting an old part of the DROP report: %w", err)
		}
	}
}

// get reads one of the list's report Secrets; nil when there is none. A Secret of that name the
// list does not control is an error: it is never overwritten or deleted.
func (s *reportStore) get(ctx context.Context, name string) (*corev1.Secret, error) {
	var existing corev1.Secret
	err := s.reader.Get(ctx, client.ObjectKey{Namespace: s.list.Namespace, Name: name}, &existing)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the DROP report: %w", err)
	}
	if !metav1.IsControlledBy(&existing, s.list) {
		return nil, fmt.Errorf("secret %s exists and does not belong to this SuppressionList", name)
	}
	return &existing, nil
}

// put creates or replaces one report Secret's data.
func (s *reportStore) put(ctx context.Context, name string, data map[string][]byte) error {
	labels := requests.RequestLabels(suppression.LabelList, s.list.Name, "")
	delete(labels, requests.LabelRequestUID)
	labels[suppression.LabelListUID] = string(s.list.UID)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.list.Namespace, Name: name, Labels: labels},
		Type: corev1.SecretTypeOpaque, Data: data}
	if err := controllerutil.SetControllerReference(s.list, secret, s.scheme); err != nil {
		return err
	}
	err := s.client.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := s.get(ctx, name)
		if gerr != nil {
			return gerr
		}
		if existing == nil {
			return fmt.Errorf("writing the DROP report: secret %s vanished while it was written; retried", name)
		}
		existing.Data = data
		err = s.client.Update(ctx, existing)
	}
	if err != nil {
		return fmt.Errorf("writing the DROP report: %w", err)
	}
	return nil
}
