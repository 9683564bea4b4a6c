package secretref_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/secretref"
)

func labelled(name string, labels map[string]string, owners ...metav1.OwnerReference) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels, OwnerReferences: owners},
		Data: map[string][]byte{"token": []byte("s3cr3t-value")}}
}

func typed(v string) map[string]string { return map[string]string{privacyv1alpha1.SecretTypeLabel: v} }

func TestGetReturnsOnlyOptedInSecrets(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(
		labelled("conn", typed(privacyv1alpha1.SecretTypeConnection)),
		labelled("ids", typed(privacyv1alpha1.SecretTypeIdentifiers)),
		labelled("tls", nil),
	).Build()
	ctx := context.Background()
	for _, tc := range []struct {
		name, want string
		ok         bool
		got        string
	}{
		{"conn", privacyv1alpha1.SecretTypeConnection, true, ""},
		{"ids", privacyv1alpha1.SecretTypeIdentifiers, true, ""},
		{"tls", privacyv1alpha1.SecretTypeConnection, false, "has no privacy.dsr.dev/secret-type label"},
		{"ids", privacyv1alpha1.SecretTypeConnection, false, "is labelled privacy.dsr.dev/secret-type=identifiers"},
		{"conn", privacyv1alpha1.SecretTypeIdentifiers, false, "is labelled privacy.dsr.dev/secret-type=connection"},
	} {
		t.Run(tc.name+"-as-"+tc.want, func(t *testing.T) {
			s, err := secretref.Get(ctx, c, "shop", tc.name, tc.want)
			if tc.ok {
				if err != nil || string(s.Data["token"]) != "s3cr3t-value" {
					t.Fatalf("got %v, %v", s, err)
				}
				return
			}
			if s != nil || !secretref.IsNotOptedIn(err) {
				t.Fatalf("want a NotOptedInError and no Secret, got %v, %v", s, err)
			}
			msg := err.Error()
			hint := "kubectl label secret " + tc.name + " -n shop privacy.dsr.dev/secret-type=" + tc.want
			if !strings.Contains(msg, tc.got) || !strings.Contains(msg, hint) || strings.Contains(msg, "s3cr3t") {
				t.Errorf("message %q: want %q and %q, no data", msg, tc.got, hint)
			}
		})
	}
	if _, err := secretref.Get(ctx, c, "shop", "absent", privacyv1alpha1.SecretTypeConnection); !apierrors.IsNotFound(err) {
		t.Errorf("absent Secret: want NotFound, got %v", err)
	}
}

func TestDeleteIdentifiersDeletesOnlyMarkedOrOwnedSecrets(t *testing.T) {
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "request", UID: types.UID("req-uid")}}
	c := fake.NewClientBuilder().WithObjects(
		labelled("ids", typed(privacyv1alpha1.SecretTypeIdentifiers)),
		labelled("managed", map[string]string{privacyv1alpha1.ManagedByLabel: privacyv1alpha1.ManagedByValue}),
		labelled("owned", nil, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "request", UID: "req-uid"}),
		labelled("tls", nil),
		labelled("conn", typed(privacyv1alpha1.SecretTypeConnection)),
		labelled("foreign-owner", nil, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "other"}),
	).Build()
	ctx := context.Background()
	for name, wantDeleted := range map[string]bool{"ids": true, "managed": true, "owned": true, "tls": false, "conn": false, "foreign-owner": false, "absent": false} {
		deleted, err := secretref.DeleteIdentifiers(ctx, c, c, owner, "shop", name)
		if err != nil || deleted != wantDeleted {
			t.Errorf("%s: deleted %v, %v; want %v", name, deleted, err, wantDeleted)
		}
		err = c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: name}, &corev1.Secret{})
		if gone := apierrors.IsNotFound(err); gone != (wantDeleted || name == "absent") {
			t.Errorf("%s: still there = %v (%v)", name, !gone, err)
		}
	}
}
