package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
	"github.com/dsr-operator/dsr-operator/internal/linkgraph"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// Linked data (docs/datastores.md#linked-data-derived-identifiers). A request whose stores
// provide derived identifiers reads them once, at acceptance and before anything is planned:
// after the erasure the rows they were read from are gone, so verification and re-verification
// could not find them again. They are kept in a Secret owned by the request (they are as personal
// as the identifiers) and deleted with the identifiers Secret.

const (
	derivedSecretSuffix = "-derived"
	derivedValuesKey    = "values"
	derivedSharedKey    = "shared"
)

// subjectRequest is an operation on behalf of the request's subject: its identifiers and every
// value derived from them.
func (s *requestScope) subjectRequest(id string) connector.Request {
	return connector.Request{ID: id, Identifiers: s.identifiers, Values: s.values, Shared: s.shared}
}

func withDryRun(req connector.Request) connector.Request { req.DryRun = true; return req }

func withDeep(req connector.Request, deep bool) connector.Request { req.Deep = deep; return req }

// deriveLinked resolves the accepted stores' links and derives their values, store by store in
// the graph's order. A graph that cannot work (an identifier nothing provides, one derived from
// itself) fails the request for good, naming it; a store that cannot be read leaves the request
// pending, to be accepted again. It reports whether the request goes on.
func (s *requestScope) deriveLinked(ctx context.Context, nameLabel string) (bool, error) {
	var nodes []linkgraph.Node
	index := map[string]int{}
	for i, st := range s.acceptedStores {
		label := fmt.Sprintf("%s %s", st.Ref.Kind, st.Ref.Name)
		index[label] = i
		nodes = append(nodes, linkgraph.FromSpec(label, st.Spec)...)
	}
	if !linkgraph.Linked(nodes) {
		return true, nil
	}
	plan, err := linkgraph.Resolve(nodes, s.identifiers.Names())
	if err != nil {
		reason := privacyv1alpha1.ReasonMappingInvalid
		var unprovided *linkgraph.UnprovidedError
		if errors.As(err, &unprovided) {
			reason = privacyv1alpha1.ReasonUnknownIdentifier
		}
		s.status.Phase = privacyv1alpha1.PhaseFailed
		s.facts.blocked = &blockingFailure{reason, "linked data cannot be resolved: " + err.Error()}
		return false, nil
	}
	values, shared := connector.Values{}, connector.Values{}
	// byStore is what each store derived (a store may take several steps), for its status.
	byStore := map[int]*storeDerivation{}
	for _, step := range plan.Steps {
		i := index[step.Store]
		st := s.acceptedStores[i]
		mine := byStore[i]
		if mine == nil {
			mine = &storeDerivation{values: connector.Values{}, shared: connector.Values{}}
			byStore[i] = mine
		}
		mine.names = union(mine.names, step.Provides)
		derivation, err := s.deriveIn(ctx, i, st.Ref.Kind, st.Ref.Name, connector.Request{
			ID: string(s.object.GetUID()), Identifiers: s.identifiers, Values: values, Shared: shared})
		if err != nil {
			failure := requests.Classify(err, s.identifiers)
			s.log.V(1).Info("Deriving linked identifiers failed", "store", step.Store, "detail", failure.Detail)
			s.status.Phase = privacyv1alpha1.PhasePending
			s.facts.refusal = &requests.Rejection{Reason: failure.Reason,
				Message: fmt.Sprintf("deriving linked identifiers from %s: %s", step.Store, failure.Message)}
			s.effect.after(rejectedRetry)
			return false, nil
		}
		if derivation != nil {
			values.Merge(derivation.Values)
			shared.Merge(derivation.Shared)
			mine.values.Merge(derivation.Values)
			mine.shared.Merge(derivation.Shared)
		}
	}
	// A value that turned out shared in a later store never selects a row to change.
	for name, vals := range values {
		kept := vals[:0]
		for _, v := range vals {
			if !shared.Has(name, v) {
				kept = append(kept, v)
			}
		}
		values[name] = kept
	}
	if err := s.writeDerived(ctx, nameLabel, values, shared); err != nil {
		return false, err
	}
	s.values, s.shared = values, shared
	s.derivedByStore = make([][]privacyv1alpha1.DerivedIdentifier, len(s.acceptedStores))
	for i, d := range byStore {
		s.derivedByStore[i] = d.counts(shared)
	}
	return true, nil
}

// storeDerivation is what one store derived at acceptance.
type storeDerivation struct {
	// names are the identifiers the store's mappings provide, found or not.
	names          []string
	values, shared connector.Values
}

// counts is the store's status entry: per identifier it provides, how many of its values are
// the subject's alone and how many are shared. A value one store derived and another found
// shared counts as shared. Never the values.
func (d *storeDerivation) counts(allShared connector.Values) []privacyv1alpha1.DerivedIdentifier {
	names := union(d.names, union(d.values.Names(), d.shared.Names()))
	out := make([]privacyv1alpha1.DerivedIdentifier, 0, len(names))
	for _, name := range names {
		shared := connector.Values{}
		shared.Add(name, d.shared[name]...)
		alone := 0
		for _, v := range d.values[name] {
			if allShared.Has(name, v) {
				shared.Add(name, v)
			} else {
				alone++
			}
		}
		out = append(out, privacyv1alpha1.DerivedIdentifier{Identifier: name, Values: int32(alone), Shared: int32(len(shared[name]))})
	}
	return out
}

// union is the sorted set of the names of a and b.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// derivedStatus is the i-th accepted store's derived identifiers, nil for a store that derived
// nothing.
func (s *requestScope) derivedStatus(i int) []privacyv1alpha1.DerivedIdentifier {
	if i < len(s.derivedByStore) {
		return s.derivedByStore[i]
	}
	return nil
}

// usesLinkedData reports whether a store of the request derived identifiers at acceptance, so
// that only such a request reads its derived values Secret again.
func usesLinkedData(progress []*privacyv1alpha1.StoreProgress) bool {
	for _, p := range progress {
		if len(p.Derived) > 0 {
			return true
		}
	}
	return false
}

// deriveIn calls Derive on one store; a store whose client derives nothing returns nil.
func (s *requestScope) deriveIn(ctx context.Context, i int, kind privacyv1alpha1.StoreKind, name string, req connector.Request) (*connector.Derivation, error) {
	cl, release, err := s.storeClient(ctx, i, kind, name)
	if err != nil {
		return nil, err
	}
	if release != nil {
		defer release()
	}
	d, ok := cl.(connector.Deriver)
	if !ok {
		return nil, nil
	}
	return d.Derive(ctx, req)
}

func derivedSecretName(obj client.Object) string {
	return requests.DerivedName(obj.GetName(), derivedSecretSuffix)
}

// writeDerived keeps the derived values in the request's Secret, replacing what an earlier
// acceptance of the same request left.
func (s *requestScope) writeDerived(ctx context.Context, nameLabel string, values, shared connector.Values) error {
	v, err := json.Marshal(map[string][]string(values))
	if err != nil {
		return err
	}
	sh, err := json.Marshal(map[string][]string(shared))
	if err != nil {
		return err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: s.object.GetNamespace(), Name: derivedSecretName(s.object),
		Labels: requests.RequestLabels(nameLabel, s.object.GetName(), string(s.object.GetUID())),
	}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{derivedValuesKey: v, derivedSharedKey: sh}}
	if err := ctrl.SetControllerReference(s.object, secret, s.deps.Scheme()); err != nil {
		return err
	}
	err = s.deps.Create(ctx, secret)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return err
	}
	var existing corev1.Secret
	if err := s.deps.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
		return err
	}
	if !metav1.IsControlledBy(&existing, s.object) {
		return fmt.Errorf("secret %q exists and does not belong to this request", secret.Name)
	}
	existing.Data = secret.Data
	return s.deps.Update(ctx, &existing)
}

// readDerived reads the values derived at acceptance. A request without linked data has none
// and reads nothing: this runs on every reconcile of every request.
func (s *requestScope) readDerived(ctx context.Context) error {
	if s.progress == nil || !usesLinkedData(s.progress()) {
		return nil
	}
	var secret corev1.Secret
	err := s.deps.APIReader.Get(ctx, client.ObjectKey{Namespace: s.object.GetNamespace(), Name: derivedSecretName(s.object)}, &secret)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !metav1.IsControlledBy(&secret, s.object) {
		return nil
	}
	var values, shared map[string][]string
	if err := json.Unmarshal(secret.Data[derivedValuesKey], &values); err != nil {
		return fmt.Errorf("reading the derived values: %w", err)
	}
	if err := json.Unmarshal(secret.Data[derivedSharedKey], &shared); err != nil {
		return fmt.Errorf("reading the derived values: %w", err)
	}
	s.values, s.shared = values, shared
	return nil
}

// deleteDerived deletes the derived values with the identifiers Secret.
func (s *requestScope) deleteDerived(ctx context.Context) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.object.GetNamespace(), Name: derivedSecretName(s.object)}}
	if err := s.deps.Delete(ctx, secret); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the derived values Secret: %w", err)
	}
	return nil
}
