// Package stores finds the data stores a request may use and keeps one pooled connector client per
// store.
package stores

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/connector"
)

// Ref names one store. Namespace is empty for a ClusterDataStore.
type Ref struct {
	Kind      privacyv1alpha1.StoreKind
	Namespace string
	Name      string
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return fmt.Sprintf("%s %s", r.Kind, r.Name)
	}
	return fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
}

// Store is a resolved store: what a request fans out to.
type Store struct {
	Ref        Ref
	Spec       *privacyv1alpha1.DataStoreSpec
	Generation int64
	UID        types.UID
}

// Resolve returns the stores a request in namespace may use: the namespace's DataStores and the
// ClusterDataStores whose namespaceSelector admits the namespace, narrowed by selector (nil selects
// all). The result is sorted by kind, then name, so status lists are stable.
func Resolve(ctx context.Context, c client.Reader, namespace string, selector *metav1.LabelSelector) ([]Store, error) {
	narrow := labels.Everything()
	if selector != nil {
		s, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return nil, &SelectorError{Err: err}
		}
		narrow = s
	}
	var local privacyv1alpha1.DataStoreList
	if err := c.List(ctx, &local, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: narrow}); err != nil {
		return nil, fmt.Errorf("listing DataStores: %w", err)
	}
	var cluster privacyv1alpha1.ClusterDataStoreList
	if err := c.List(ctx, &cluster, client.MatchingLabelsSelector{Selector: narrow}); err != nil {
		return nil, fmt.Errorf("listing ClusterDataStores: %w", err)
	}
	var out []Store
	for i := range local.Items {
		ds := &local.Items[i]
		if !ds.DeletionTimestamp.IsZero() {
			continue
		}
		out = append(out, Store{
			Ref:  Ref{Kind: privacyv1alpha1.KindDataStore, Namespace: ds.Namespace, Name: ds.Name},
			Spec: &ds.Spec, Generation: ds.Generation, UID: ds.UID,
		})
	}
	if len(cluster.Items) > 0 {
		var ns corev1.Namespace
		if err := c.Get(ctx, types.NamespacedName{Name: namespace}, &ns); err != nil {
			return nil, fmt.Errorf("reading namespace %q: %w", namespace, err)
		}
		for i := range cluster.Items {
			cds := &cluster.Items[i]
			if !cds.DeletionTimestamp.IsZero() {
				continue
			}
			ok, err := Admits(cds, ns.Labels)
			if err != nil || !ok {
				// A malformed namespaceSelector admits nobody; the ClusterDataStore's own status says why.
				continue
			}
			out = append(out, Store{
				Ref:  Ref{Kind: privacyv1alpha1.KindClusterDataStore, Name: cds.Name},
				Spec: &cds.Spec.DataStoreSpec, Generation: cds.Generation, UID: cds.UID,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ref.Kind != out[j].Ref.Kind {
			return out[i].Ref.Kind == privacyv1alpha1.KindDataStore
		}
		return out[i].Ref.Name < out[j].Ref.Name
	})
	return out, nil
}

// Get re-reads one store named in a request's status. A store that no longer exists, or a
// ClusterDataStore that no longer admits the namespace, is reported as *GoneError.
func Get(ctx context.Context, c client.Reader, namespace string, kind privacyv1alpha1.StoreKind, name string) (*Store, error) {
	switch kind {
	case privacyv1alpha1.KindDataStore:
		var ds privacyv1alpha1.DataStore
		if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &ds); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return nil, &GoneError{Ref: Ref{Kind: kind, Namespace: namespace, Name: name}, Why: "was deleted"}
			}
			return nil, err
		}
		return &Store{Ref: Ref{Kind: kind, Namespace: namespace, Name: name}, Spec: &ds.Spec, Generation: ds.Generation, UID: ds.UID}, nil
	case privacyv1alpha1.KindClusterDataStore:
		ref := Ref{Kind: kind, Name: name}
		var cds privacyv1alpha1.ClusterDataStore
		if err := c.Get(ctx, types.NamespacedName{Name: name}, &cds); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return nil, &GoneError{Ref: ref, Why: "was deleted"}
			}
			return nil, err
		}
		var ns corev1.Namespace
		if err := c.Get(ctx, types.NamespacedName{Name: namespace}, &ns); err != nil {
			return nil, fmt.Errorf("reading namespace %q: %w", namespace, err)
		}
		if ok, _ := Admits(&cds, ns.Labels); !ok {
			return nil, &GoneError{Ref: ref, Why: fmt.Sprintf("no longer admits namespace %q", namespace)}
		}
		return &Store{Ref: ref, Spec: &cds.Spec.DataStoreSpec, Generation: cds.Generation, UID: cds.UID}, nil
	default:
		return nil, fmt.Errorf("unknown store kind %q", kind)
	}
}

// Admits reports whether a ClusterDataStore's namespaceSelector admits a namespace with these
// labels. A missing selector admits none, an empty one admits all.
func Admits(cds *privacyv1alpha1.ClusterDataStore, nsLabels map[string]string) (bool, error) {
	if cds.Spec.NamespaceSelector == nil {
		return false, nil
	}
	s, err := metav1.LabelSelectorAsSelector(cds.Spec.NamespaceSelector)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(nsLabels)), nil
}

// SelectorError is a request's storeSelector that cannot be parsed.
type SelectorError struct{ Err error }

func (e *SelectorError) Error() string { return "invalid storeSelector: " + e.Err.Error() }

// GoneError says a store a request was using can no longer be used by it.
type GoneError struct {
	Ref Ref
	Why string
}

func (e *GoneError) Error() string { return e.Ref.String() + " " + e.Why }

// IdentifierNames returns the identifier names a store's mapping uses, as its connector reads the
// spec. ok is false for stores that accept any identifier (http: the processor decides). A type
// without a connector uses none; the store's own status says it cannot be used.
func IdentifierNames(spec *privacyv1alpha1.DataStoreSpec) (names []string, ok bool) {
	p, err := connector.ProviderFor(spec.Type)
	if err != nil {
		return nil, true
	}
	names, acceptsAny := p.IdentifierNames(spec)
	return names, !acceptsAny
}
