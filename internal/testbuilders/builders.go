// Package testbuilders builds the requests, stores and Secrets that controller and end-to-end tests
// create, so that each test states only what matters to it.
package testbuilders

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// DeletionRequest is a GDPR deletion request of the subject in the Secret identifiers, changed by
// each option.
func DeletionRequest(namespace, name, identifiers string, opts ...func(*privacyv1alpha1.DeletionRequest)) *privacyv1alpha1.DeletionRequest {
	dr := &privacyv1alpha1.DeletionRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: common(identifiers)},
	}
	for _, o := range opts {
		o(dr)
	}
	return dr
}

// AccessRequest is a GDPR access request of the subject in the Secret identifiers, changed by each
// option.
func AccessRequest(namespace, name, identifiers string, opts ...func(*privacyv1alpha1.AccessRequest)) *privacyv1alpha1.AccessRequest {
	ar := &privacyv1alpha1.AccessRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: common(identifiers)},
	}
	for _, o := range opts {
		o(ar)
	}
	return ar
}

func common(identifiers string) privacyv1alpha1.RequestSpecCommon {
	return privacyv1alpha1.RequestSpecCommon{
		Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: identifiers}},
		Regulation: privacyv1alpha1.RegulationGDPR,
	}
}

// DataStore is a namespaced store with spec.
func DataStore(namespace, name string, spec privacyv1alpha1.DataStoreSpec) *privacyv1alpha1.DataStore {
	return &privacyv1alpha1.DataStore{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: spec}
}

// IdentifiersSecret is a subject's identifiers Secret, opted in with the identifiers label.
func IdentifiersSecret(namespace, name string, data map[string]string) *corev1.Secret {
	return typedSecret(namespace, name, privacyv1alpha1.SecretTypeIdentifiers, data)
}

// ConnectionSecret is a store's connection Secret (DSN, URL, token), opted in with the connection
// label.
func ConnectionSecret(namespace, name string, data map[string]string) *corev1.Secret {
	return typedSecret(namespace, name, privacyv1alpha1.SecretTypeConnection, data)
}

func typedSecret(namespace, name, secretType string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
		Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: secretType}}, StringData: data}
}

// DeletionStore is a deletion's status entry for a store.
func DeletionStore(name string, phase privacyv1alpha1.StorePhase, opts ...func(*privacyv1alpha1.DeletionStoreStatus)) privacyv1alpha1.DeletionStoreStatus {
	st := privacyv1alpha1.DeletionStoreStatus{StoreProgress: privacyv1alpha1.StoreProgress{
		Name: name, Kind: privacyv1alpha1.KindDataStore, Phase: phase}}
	for _, o := range opts {
		o(&st)
	}
	return st
}

// AccessStore is an access request's status entry for a store.
func AccessStore(name string, phase privacyv1alpha1.StorePhase, records int64) privacyv1alpha1.AccessStoreStatus {
	return privacyv1alpha1.AccessStoreStatus{StoreProgress: privacyv1alpha1.StoreProgress{
		Name: name, Kind: privacyv1alpha1.KindDataStore, Phase: phase}, Records: records}
}

// LongName is a valid object name of n characters (at most 253): DNS labels of up to 63
// characters joined by dots, as long names are in practice.
func LongName(n int) string {
	b := make([]byte, n)
	for i := range b {
		switch {
		case i%64 == 63 && i != n-1:
			b[i] = '.'
		default:
			b[i] = 'a' + byte(i%26)
		}
	}
	return string(b)
}
