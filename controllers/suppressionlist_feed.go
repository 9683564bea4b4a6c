package controllers

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/normalize"
	"github.com/dsr-operator/dsr-operator/internal/subject"
	"github.com/dsr-operator/dsr-operator/internal/suppression"
)

// +kubebuilder:rbac:groups=privacy.dsr.dev,resources=suppressionlists,verbs=get;list;watch

// feedKinds are the kinds each value is hashed under: a store may match the same identifier as
// an email in one column and exactly in another (spec.tables[].match[].as), and the sweep hashes
// each stored value under its column's kind.
var feedKinds = []normalize.Kind{normalize.Email, normalize.Phone, normalize.Exact}

// feedSuppressionLists adds the subject of a request whose re-verification period ends (its
// identifiers and derived values) as keyed hashes to every SuppressionList of the namespace fed
// by DeletionRequests, before the identifiers Secret is deleted. An error keeps the Secret: the
// period's end is tried again, and nobody falls off the lists on a failed write.
func (r *DeletionRequestReconciler) feedSuppressionLists(ctx context.Context, s *deletionScope) error {
	if r.SuppressionKey == nil {
		return nil // suppression lists are not enabled (--enable-suppression-lists)
	}
	var lists privacyv1alpha1.SuppressionListList
	if err := r.List(ctx, &lists, client.InNamespace(s.request.Namespace)); err != nil {
		return fmt.Errorf("listing SuppressionLists: %w", err)
	}
	var fed []*privacyv1alpha1.SuppressionList
	for i := range lists.Items {
		l := &lists.Items[i]
		if l.Spec.Source.DeletionRequests != nil && l.DeletionTimestamp.IsZero() {
			fed = append(fed, l)
		}
	}
	if len(fed) == 0 {
		return nil
	}
	if len(r.SuppressionKey) == 0 {
		return errors.New("SuppressionLists are fed by DeletionRequests but the manager has no suppression key")
	}
	ids, err := subject.Read(ctx, r.APIReader, s.request.Namespace, s.request.Spec.Subject.IdentifiersSecretRef.Name)
	var problem *subject.Problem
	if errors.As(err, &problem) {
		// Gone or not the operator's: there is nothing of the subject left to add.
		return nil
	}
	if err != nil {
		return err
	}
	s.identifiers = ids
	if err := s.readDerived(ctx); err != nil {
		return err
	}
	entries := subjectEntries(r.SuppressionKey, r.phoneRegion(), s.subjectRequest(string(s.request.UID)).AllValues())
	storage := suppression.Storage{Client: r.Client, Reader: r.APIReader}
	for _, l := range fed {
		_, err := storage.Update(ctx, l, func(loaded *suppression.Loaded) (string, bool, error) {
			return loaded.Index.SourceDigest, loaded.Set.Add(entries...) > 0, nil
		})
		if err != nil {
			return fmt.Errorf("adding the subject to SuppressionList %s: %w", l.Name, err)
		}
	}
	s.effect.normal("SuppressionListed", "Suppress", fmt.Sprintf("the subject was added, as keyed hashes, to %d SuppressionList(s) before the identifiers Secret was deleted", len(fed)))
	return nil
}

// subjectEntries are the keyed hashes of every value, under every kind it normalises as.
func subjectEntries(key []byte, region string, values connector.Values) []suppression.Entry {
	h := suppression.KeyedHasher{Key: key, Norm: normalize.Normalizer{Region: region}}
	var out []suppression.Entry
	for _, name := range values.Names() {
		for _, v := range values[name] {
			for _, kind := range feedKinds {
				if _, ok := h.Norm.Normalize(kind, v); !ok {
					continue
				}
				if hash, ok := h.HashOf(name, kind, v); ok {
					out = append(out, suppression.Entry{Hash: hash, Kind: suppression.KindOf(kind)})
				}
			}
		}
	}
	return out
}

func (d *Dependencies) phoneRegion() string {
	if d.Pool != nil {
		return d.Pool.DefaultPhoneRegion
	}
	return ""
}
