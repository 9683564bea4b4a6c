// Command portalexample is the Go example of docs/portal-guide.md, kept here so that it always
// compiles against the current API: a privacy portal files a deletion request for a person, waits
// for the verified erasure, then files an access request and reads the export.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func main() {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = privacyv1alpha1.AddToScheme(scheme)
	c, err := client.New(ctrl.GetConfigOrDie(), client.Options{Scheme: scheme})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	const namespace = "shop"

	// 1. The person's identifiers go into a Secret, never into the request.
	ids := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "dsr-subject-"},
		StringData: map[string]string{"email": "jane.doe@example.com", "userId": "4711"},
	}
	if err := c.Create(ctx, ids); err != nil {
		log.Fatal(err)
	}

	// 2. The request: the regulation sets the deadline, counted from when the person asked.
	asked := metav1.NewTime(time.Now().Add(-2 * time.Hour))
	dr := &privacyv1alpha1.DeletionRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "erase-"},
		Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: ids.Name}},
			Regulation: privacyv1alpha1.RegulationGDPR,
			ReceivedAt: &asked,
		}},
	}
	if err := c.Create(ctx, dr); err != nil {
		log.Fatal(err)
	}
	fmt.Println("filed", dr.Name)

	// 3. Follow the conditions. Accepted=False names what to fix (a missing Secret, no store, an
	// identifier name no store knows); Verified=True means no store holds anything about the person.
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(dr), dr); err != nil {
			log.Fatal(err)
		}
		if c := meta.FindStatusCondition(dr.Status.Conditions, privacyv1alpha1.ConditionAccepted); c != nil && c.Status == metav1.ConditionFalse {
			fmt.Printf("not accepted yet: %s: %s\n", c.Reason, c.Message)
		}
		if meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	for _, s := range dr.Status.Stores {
		fmt.Printf("%s %s: erased %d, masked %d, retained %d, remaining %d\n", s.Kind, s.Name, s.Erased, s.Masked, s.Retained, s.Remaining)
	}
	fmt.Printf("receipt: ConfigMap %s, %s\n", dr.Status.Receipt.ConfigMapName, dr.Status.Receipt.SHA256)

	// 4. An access request works the same way; its export is a Secret owned by the request.
	ids2 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "dsr-subject-"},
		StringData: map[string]string{"email": "max@example.org"}}
	if err := c.Create(ctx, ids2); err != nil {
		log.Fatal(err)
	}
	ar := &privacyv1alpha1.AccessRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "access-"},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: ids2.Name}},
			Regulation: privacyv1alpha1.RegulationGDPR,
		}},
	}
	if err := c.Create(ctx, ar); err != nil {
		log.Fatal(err)
	}
	for !meta.IsStatusConditionTrue(ar.Status.Conditions, privacyv1alpha1.ConditionReady) {
		time.Sleep(5 * time.Second)
		if err := c.Get(ctx, client.ObjectKeyFromObject(ar), ar); err != nil {
			log.Fatal(err)
		}
	}
	ref := ar.Status.Export
	var export corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.SecretName}, &export); err != nil {
		log.Fatal(err)
	}
	data := export.Data[ref.Key]
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != ref.SHA256 {
		log.Fatal("the export does not match its digest")
	}
	if ref.Encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			log.Fatal(err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("export (%d bytes of JSON, deleted at %s):\n%s\n", len(data), ref.ExpiresAt.Format(time.RFC3339), data)
}
