package validation

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

const s3Store = `
apiVersion: privacy.dsr.dev/v1alpha1
kind: DataStore
spec:
  type: s3
  connection:
    url: https://s3.eu-west-1.amazonaws.com
    secretRef: {name: shop-s3, key: credentials}
    caSecretRef: {name: shop-s3-ca, key: ca.crt}
  objects:
  - {bucket: shop-uploads, key: "users/{customerId}/", action: delete}
  - {bucket: shop.invoices-2025, key: "invoices/{customerId}.pdf", action: retain, retainReason: "tax law: 10 years"}
`

// TestS3Store: spec.objects only on s3 stores, with valid bucket names and key templates.
func TestS3Store(t *testing.T) {
	ctx := context.Background()
	namespace := createNamespace(t, "s3")
	if err := env.Client.Create(ctx, object(t, s3Store, "valid", namespace)); err != nil {
		t.Fatalf("the valid s3 store was refused: %v", err)
	}
	plain := object(t, s3Store, "plain-http", namespace)
	set("spec.connection.url", "http://127.0.0.1:7070")(plain.Object)
	set("spec.connection.allowInsecureHTTP", true)(plain.Object)
	del("spec.connection.caSecretRef")(plain.Object)
	if err := env.Client.Create(ctx, plain); err != nil {
		t.Fatalf("an s3 store on plain http with the opt-in was refused: %v", err)
	}

	refused := []struct {
		name string
		base string
		set  func(map[string]any)
		want []string
	}{
		{"s3 store without objects", s3Store, del("spec.objects"),
			[]string{"spec.objects", "objects is required for s3 stores"}},
		{"s3 store without url", s3Store, del("spec.connection.url"),
			[]string{"spec.connection.url", "connection.url is required for s3 stores"}},
		{"s3 store without secretRef", s3Store, del("spec.connection.secretRef"),
			[]string{"spec.connection.secretRef", "connection.secretRef is required"}},
		{"objects on a postgres store", postgresStore, set("spec.objects", []any{map[string]any{"bucket": "abc", "key": "u/{userId}", "action": "delete"}}),
			[]string{"spec.objects", "objects is only allowed for s3 stores"}},
		{"keys on an s3 store", s3Store, set("spec.keys", []any{map[string]any{"pattern": "u:{userId}", "action": "delete"}}),
			[]string{"spec.keys", "keys is only allowed for redis stores"}},
		{"upper-case bucket", s3Store, set("spec.objects[0].bucket", "Shop_Uploads"),
			[]string{"spec.objects[0].bucket", "should match"}},
		{"bucket with two dots", s3Store, set("spec.objects[0].bucket", "shop..uploads"),
			[]string{"spec.objects[0].bucket", "no two adjacent dots"}},
		{"key without placeholder", s3Store, set("spec.objects[0].key", "users/all/"),
			[]string{"spec.objects[0].key", "should match"}},
		{"key with a stray brace", s3Store, set("spec.objects[0].key", "users/{customerId}}/"),
			[]string{"spec.objects[0].key", "should match"}},
		{"key with a control character", s3Store, set("spec.objects[0].key", "users/{customerId}/\n"),
			[]string{"spec.objects[0].key", "should match"}},
		{"retain without retainReason", s3Store, del("spec.objects[1].retainReason"),
			[]string{"spec.objects[1].retainReason", "retainReason is required when action is retain"}},
		{"object action mask", s3Store, set("spec.objects[0].action", "mask"),
			[]string{"spec.objects[0].action", `Unsupported value: "mask"`}},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.base, fmt.Sprintf("refused-%d", i), namespace)
			tc.set(obj.Object)
			err := env.Client.Create(ctx, obj)
			if err == nil || !apierrors.IsInvalid(err) {
				t.Fatalf("want an invalid error, got %v:\n%s", err, dump(obj))
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the message does not say %q:\n%v", want, err)
				}
			}
		})
	}
}
