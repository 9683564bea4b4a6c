package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// The guide's readExport, as the portal, on an export the operator delivered to a bucket: it
// downloads the JSON through its link in files.json and checks it against the status's digest.
func TestReadExportFromBucket(t *testing.T) {
	s := newShop(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s3, err := teststore.StartS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	bucket, err := s3.CreateBucket(ctx, "exports", true, false)
	if err != nil {
		t.Fatal(err)
	}
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "bucket-conn",
		Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeConnection}},
		StringData: map[string]string{"credentials": s3.Secret()}})
	ids, err := identifiersSecret(ctx, env.Client, s.ns, map[string]string{"email": maxEmail})
	if err != nil {
		t.Fatal(err)
	}
	ar := &privacyv1alpha1.AccessRequest{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "to-bucket"},
		Spec: privacyv1alpha1.AccessRequestSpec{
			RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{Regulation: privacyv1alpha1.RegulationGDPR,
				Subject: privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: ids.Name}}},
			Formats: []privacyv1alpha1.ExportFormat{privacyv1alpha1.ExportFormatJSON, privacyv1alpha1.ExportFormatHTML},
			Destination: &privacyv1alpha1.ExportDestination{S3: &privacyv1alpha1.S3Destination{
				URL: s3.Endpoint(), Bucket: bucket, Prefix: "dsr", AllowInsecureHTTP: true,
				SecretRef: privacyv1alpha1.SecretKeySelector{Name: "bucket-conn", Key: "credentials"}}}}}
	create(t, ar)
	portal := portalClient(t)
	if err := waitUntilReady(ctx, portal, ar, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ar.Status.Export == nil || ar.Status.Export.Delivery == nil {
		t.Fatalf("the export was not delivered to the bucket: %+v", ar.Status.Export)
	}
	var secret corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: ar.Status.Export.SecretName}, &secret); err != nil {
		t.Fatal(err)
	}
	if _, held := secret.Data[ar.Status.Export.Key]; held {
		t.Fatalf("the export Secret holds %s itself: the bucket path is not exercised", ar.Status.Export.Key)
	}

	export, err := readExport(ctx, portal, ar)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(export) {
		t.Fatalf("export is not JSON:\n%.200s", export)
	}
	for _, want := range []string{maxEmail, "Max Mustermann", "Order fulfilment"} {
		if !bytes.Contains(export, []byte(want)) {
			t.Errorf("export lacks %q", want)
		}
	}
	if bytes.Contains(export, []byte("jane.doe")) {
		t.Error("export holds another person's data")
	}

	// A status digest that does not match what the link serves is refused.
	ar.Status.Export.SHA256 = "sha256:" + string(bytes.Repeat([]byte("0"), 64))
	if _, err := readExport(ctx, portal, ar); err == nil {
		t.Error("readExport accepted a download that does not match the status's digest")
	}
}
