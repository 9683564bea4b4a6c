// Package secretref reads the Secrets a user names in a DataStore or a request only when the
// Secret's owner marked them for that use, and deletes identifiers Secrets only when they are so
// marked or the operator's own. A user who may write DataStores or requests but not read Secrets
// therefore cannot borrow, leak or destroy a Secret through the operator (issue 13, findings 2, 3).
package secretref

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// NotOptedInError says a Secret exists but does not carry the SecretTypeLabel value its use needs.
// Its message tells the Secret's owner how to opt in; it never quotes the Secret's data.
type NotOptedInError struct {
	Namespace, Name string
	// Want is the label value the use needs; Got is what the Secret carries ("" when unlabelled).
	Want, Got string
}

func (e *NotOptedInError) Error() string {
	got := "has no " + privacyv1alpha1.SecretTypeLabel + " label"
	if e.Got != "" {
		got = fmt.Sprintf("is labelled %s=%s", privacyv1alpha1.SecretTypeLabel, e.Got)
	}
	return fmt.Sprintf("Secret %q in namespace %q %s, so the operator does not use it as a %s Secret; "+
		"whoever owns it opts it in with: kubectl label secret %s -n %s %s=%s",
		e.Name, e.Namespace, got, e.Want, e.Name, e.Namespace, privacyv1alpha1.SecretTypeLabel, e.Want)
}

// IsNotOptedIn reports whether err is (or wraps) a *NotOptedInError.
func IsNotOptedIn(err error) bool {
	var e *NotOptedInError
	return errors.As(err, &e)
}

// Get reads Secret namespace/name with reader (a direct API reader: Secrets are not cached) and
// returns it only if it is labelled SecretTypeLabel=want. Errors from reader (NotFound included) are
// returned as they are; a Secret without the label gives a *NotOptedInError and its data is dropped.
func Get(ctx context.Context, reader client.Reader, namespace, name, want string) (*corev1.Secret, error) {
	var secret corev1.Secret
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &secret); err != nil {
		return nil, err
	}
	if got := secret.Labels[privacyv1alpha1.SecretTypeLabel]; got != want {
		return nil, &NotOptedInError{Namespace: namespace, Name: name, Want: want, Got: got}
	}
	return &secret, nil
}

// Deletable reports whether the operator may delete s as an identifiers Secret: it is marked as
// identifiers, or it is the operator's own (its managed-by label or an owner reference to owner).
func Deletable(s *corev1.Secret, owner metav1.Object) bool {
	if s.Labels[privacyv1alpha1.SecretTypeLabel] == privacyv1alpha1.SecretTypeIdentifiers ||
		s.Labels[privacyv1alpha1.ManagedByLabel] == privacyv1alpha1.ManagedByValue {
		return true
	}
	for _, ref := range s.OwnerReferences {
		if owner != nil && ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}

// DeleteIdentifiers deletes the identifiers Secret namespace/name of the request owner if Deletable
// allows it. The delete is conditional on the UID and resourceVersion that were checked, so a Secret
// replaced in between is not deleted. It returns false, nil when the Secret is gone already or is
// not the operator's to delete (then it is left alone: a requester may have named any Secret).
func DeleteIdentifiers(ctx context.Context, c client.Client, reader client.Reader, owner metav1.Object, namespace, name string) (bool, error) {
	var secret corev1.Secret
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &secret); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !Deletable(&secret, owner) {
		return false, nil
	}
	uid, rv := secret.UID, secret.ResourceVersion
	err := c.Delete(ctx, &secret, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	if err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return true, nil
}
