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

// deriveLinked resolves the accepted stores' links and derives their values, wave by wave of
// the graph (request_derive.go). A graph that cannot work (an identifier nothing provides, one derived from
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
	d := newDerivation(s, plan, index, nodes)
	none := derivedValues{connector.Values{}, connector.Values{}}
	if failed := d.run(ctx, none); failed != nil {
		s.refuseDerive(failed)
		return false, nil
	}
	existing, err := s.createDerived(ctx, nameLabel, d.values, d.shared)
	if err != nil {
		return false, err
	}
	// An earlier acceptance of this request derived values and may have erased the rows they came
	// from before its status was written (a crash mid-erasure): this derivation found only what
	// is left, and the linked rows of later stores would stay while the request verifies clean.
	// What it derived is still the subject's and is followed again. Only then is the Secret read:
	// the first acceptance of a request writes it without reading it.
	if existing != nil {
		earlier, err := parseDerived(existing)
		if err != nil {
			return false, err
		}
		earlier.ensure()
		if !earlier.within(d.values, d.shared) {
			d = newDerivation(s, plan, index, nodes)
			if failed := d.run(ctx, earlier); failed != nil {
				s.refuseDerive(failed)
				return false, nil
			}
		}
		if existing.Data, err = derivedData(d.values, d.shared); err != nil {
			return false, err
		}
		if err := s.deps.Update(ctx, existing); err != nil {
			return false, err
		}
	}
	s.values, s.shared = d.values, d.shared
	s.derivedByStore = d.counts(len(s.acceptedStores))
	s.derivedPlans = d.validPlans()
	return true, nil
}

// storeDerivation is what one store derived at acceptance.
type storeDerivation struct {
	// names are the identifiers the store's mappings provide, found or not.
	names          []string
	values, shared *connector.ValueSet
}

// counts is the store's status entry: per identifier its mappings provide (values passed in to
// it and handed back are not its own), how many of its values are the subject's alone and how
// many are shared. A value one store derived and another found shared counts as shared. Never
// the values.
func (d *storeDerivation) counts(allShared *connector.ValueSet) []privacyv1alpha1.DerivedIdentifier {
	out := make([]privacyv1alpha1.DerivedIdentifier, 0, len(d.names))
	for _, name := range d.names {
		alone, shared := 0, len(d.shared.Values()[name])
		for _, v := range d.values.Values()[name] {
			switch {
			case !allShared.Has(name, v):
				alone++
			case !d.shared.Has(name, v):
				shared++
			}
		}
		out = append(out, privacyv1alpha1.DerivedIdentifier{Identifier: name, Values: int32(alone), Shared: int32(shared)})
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

// derivedData is the derived values Secret's data.
func derivedData(values, shared connector.Values) (map[string][]byte, error) {
	v, err := json.Marshal(map[string][]string(values))
	if err != nil {
		return nil, err
	}
	sh, err := json.Marshal(map[string][]string(shared))
	if err != nil {
		return nil, err
	}
	return map[string][]byte{derivedValuesKey: v, derivedSharedKey: sh}, nil
}

// createDerived keeps the derived values in a new Secret owned by the request. When an earlier
// acceptance of the same request left one, it returns that one, unchanged, for the caller to
// read and replace.
func (s *requestScope) createDerived(ctx context.Context, nameLabel string, values, shared connector.Values) (*corev1.Secret, error) {
	data, err := derivedData(values, shared)
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: s.object.GetNamespace(), Name: derivedSecretName(s.object),
		Labels: requests.RequestLabels(nameLabel, s.object.GetName(), string(s.object.GetUID())),
	}, Type: corev1.SecretTypeOpaque, Data: data}
	if err := ctrl.SetControllerReference(s.object, secret, s.deps.Scheme()); err != nil {
		return nil, err
	}
	err = s.deps.Create(ctx, secret)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	var existing corev1.Secret
	if err := s.deps.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
		return nil, err
	}
	if !metav1.IsControlledBy(&existing, s.object) {
		return nil, fmt.Errorf("secret %q exists and does not belong to this request", secret.Name)
	}
	return &existing, nil
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
	d, err := parseDerived(&secret)
	if err != nil {
		return err
	}
	s.values, s.shared = d.values, d.shared
	return nil
}

// derivedValues are the contents of a derived values Secret.
type derivedValues struct{ values, shared connector.Values }

func parseDerived(secret *corev1.Secret) (derivedValues, error) {
	var values, shared map[string][]string
	if err := json.Unmarshal(secret.Data[derivedValuesKey], &values); err != nil {
		return derivedValues{}, fmt.Errorf("reading the derived values: %w", err)
	}
	if err := json.Unmarshal(secret.Data[derivedSharedKey], &shared); err != nil {
		return derivedValues{}, fmt.Errorf("reading the derived values: %w", err)
	}
	return derivedValues{values, shared}, nil
}

// ensure makes both sets usable when the Secret held JSON null.
func (d *derivedValues) ensure() {
	if d.values == nil {
		d.values = connector.Values{}
	}
	if d.shared == nil {
		d.shared = connector.Values{}
	}
}

// within reports whether every value of d is among values or shared, and every shared value of
// d among shared.
func (d derivedValues) within(values, shared connector.Values) bool {
	has := func(v connector.Values, name string) map[string]bool {
		set := make(map[string]bool, len(v[name]))
		for _, x := range v[name] {
			set[x] = true
		}
		return set
	}
	for name, vals := range d.values {
		own, sh := has(values, name), has(shared, name)
		for _, v := range vals {
			if !own[v] && !sh[v] {
				return false
			}
		}
	}
	for name, vals := range d.shared {
		sh := has(shared, name)
		for _, v := range vals {
			if !sh[v] {
				return false
			}
		}
	}
	return true
}

// deleteDerived deletes the derived values with the identifiers Secret.
func (s *requestScope) deleteDerived(ctx context.Context) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.object.GetNamespace(), Name: derivedSecretName(s.object)}}
	if err := s.deps.Delete(ctx, secret); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the derived values Secret: %w", err)
	}
	return nil
}
