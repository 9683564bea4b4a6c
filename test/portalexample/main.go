// Command portalexample is the Go example of docs/portal-guide.md: a privacy portal files a
// deletion request for a person and waits until the erasure is verified and the receipt issued,
// then files an access request for another person and reads the export. It needs nothing but the
// privacy-portal-role in the namespace it files into; test/portalexample runs it, as that role,
// against a real API server and operator.
//
//	go run ./test/portalexample --kubeconfig portal.kubeconfig --namespace shop
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func main() {
	namespace := flag.String("namespace", "shop", "Namespace the portal files requests into.")
	poll := flag.Duration("poll-interval", 5*time.Second, "How often to look at a request's status.")
	flag.Parse() // also --kubeconfig, which controller-runtime registers
	ctx := ctrl.SetupSignalHandler()

	c, err := newClient(ctrl.GetConfigOrDie())
	if err != nil {
		log.Fatal(err)
	}

	// Jane asked on the portal two hours ago: the regulation's deadline counts from then.
	jane := map[string]string{"email": "jane.doe@example.com", "userId": "4711"}
	dr, err := requestErasure(ctx, c, *namespace, jane, time.Now().Add(-2*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("filed DeletionRequest", dr.Name)
	if err := waitUntilReady(ctx, c, dr, *poll); err != nil {
		log.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
		log.Fatalf("%s is ready but not verified", dr.Name)
	}
	for _, s := range dr.Status.Stores {
		fmt.Printf("  %s %s: erased %d, masked %d, retained %d, remaining %d\n", s.Kind, s.Name, s.Erased, s.Masked, s.Retained, s.Remaining)
	}
	// The receipt (a ConfigMap, signed with Ed25519) is what the portal shows the person or files
	// for the auditor: it names no identifier, only the salted status.subjectDigest.
	if r := dr.Status.Receipt; r != nil {
		fmt.Printf("  receipt: ConfigMap %s, sha256 %s, key %s\n", r.ConfigMapName, r.SHA256, r.KeyID)
	}

	// Max asks for a copy of his data.
	ar, err := requestAccess(ctx, c, *namespace, map[string]string{"email": "max@example.org"}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("filed AccessRequest", ar.Name)
	if err := waitUntilReady(ctx, c, ar, *poll); err != nil {
		log.Fatal(err)
	}
	export, err := readExport(ctx, c, ar)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("export of %s: %d bytes of JSON", ar.Name, len(export))
	if exp := ar.Status.Export.ExpiresAt; exp != nil {
		fmt.Printf(", deleted by the operator at %s", exp.Format(time.RFC3339))
	}
	fmt.Println()
	// Hand the export to the person over the portal's authenticated channel; here it goes to stdout.
	if _, err := os.Stdout.Write(append(export, '\n')); err != nil {
		log.Fatal(err)
	}
}

// newClient is a controller-runtime client that knows the privacy.dsr.dev types.
func newClient(cfg *rest.Config) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := privacyv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// identifiersSecret creates the Secret that holds a person's identifiers, one key per identifier
// name that the stores' mappings use (email, userId, phone...). The identifiers go nowhere else:
// not into the request, and not into the portal's logs.
func identifiersSecret(ctx context.Context, c client.Client, namespace string, identifiers map[string]string) (*corev1.Secret, error) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "dsr-subject-",
			// The operator reads (and later deletes) only Secrets marked as identifiers.
			Labels: map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeIdentifiers}},
		Type:       corev1.SecretTypeOpaque,
		StringData: identifiers,
	}
	if err := c.Create(ctx, s); err != nil {
		return nil, fmt.Errorf("creating the identifiers Secret in %s: %w", namespace, err)
	}
	return s, nil
}

// requestErasure files a DeletionRequest under the GDPR for the person the identifiers name.
// receivedAt is when the person asked.
func requestErasure(ctx context.Context, c client.Client, namespace string, identifiers map[string]string, receivedAt time.Time) (*privacyv1alpha1.DeletionRequest, error) {
	s, err := identifiersSecret(ctx, c, namespace, identifiers)
	if err != nil {
		return nil, err
	}
	asked := metav1.NewTime(receivedAt)
	dr := &privacyv1alpha1.DeletionRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "erase-"},
		Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: s.Name}},
			Regulation: privacyv1alpha1.RegulationGDPR,
			ReceivedAt: &asked,
		}},
	}
	if err := c.Create(ctx, dr); err != nil {
		return nil, fmt.Errorf("creating a DeletionRequest in %s: %w", namespace, err)
	}
	return dr, nil
}

// requestAccess files an AccessRequest under the GDPR for the person the identifiers name.
func requestAccess(ctx context.Context, c client.Client, namespace string, identifiers map[string]string, receivedAt time.Time) (*privacyv1alpha1.AccessRequest, error) {
	s, err := identifiersSecret(ctx, c, namespace, identifiers)
	if err != nil {
		return nil, err
	}
	asked := metav1.NewTime(receivedAt)
	ar := &privacyv1alpha1.AccessRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "access-"},
		Spec: privacyv1alpha1.AccessRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: s.Name}},
			Regulation: privacyv1alpha1.RegulationGDPR,
			ReceivedAt: &asked,
		}},
	}
	if err := c.Create(ctx, ar); err != nil {
		return nil, fmt.Errorf("creating an AccessRequest in %s: %w", namespace, err)
	}
	return ar, nil
}

// waitUntilReady polls a DeletionRequest or AccessRequest until its Ready condition is True,
// printing each condition as it changes. Accepted=False is not final: its reason says what to
// fix (IdentifiersSecretNotFound, NoMatchingStores, UnknownIdentifier...) and the operator tries
// again once it is fixed. Phase Failed is final.
func waitUntilReady(ctx context.Context, c client.Client, req client.Object, every time.Duration) error {
	seen := map[string]string{}
	return wait.PollUntilContextCancel(ctx, every, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(req), req); err != nil {
			return false, fmt.Errorf("reading %s: %w", req.GetName(), err)
		}
		var phase privacyv1alpha1.RequestPhase
		var conditions []metav1.Condition
		switch r := req.(type) {
		case *privacyv1alpha1.DeletionRequest:
			phase, conditions = r.Status.Phase, r.Status.Conditions
		case *privacyv1alpha1.AccessRequest:
			phase, conditions = r.Status.Phase, r.Status.Conditions
		default:
			return false, fmt.Errorf("%T is not a request", req)
		}
		// Condition messages never hold identifiers, so the portal may log them.
		for _, cond := range conditions {
			if now := string(cond.Status) + "/" + cond.Reason; seen[cond.Type] != now {
				seen[cond.Type] = now
				fmt.Printf("  %s: %s=%s (%s) %s\n", req.GetName(), cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
		if phase == privacyv1alpha1.PhaseFailed {
			ready := meta.FindStatusCondition(conditions, privacyv1alpha1.ConditionReady)
			if ready == nil {
				return false, fmt.Errorf("%s failed", req.GetName())
			}
			return false, fmt.Errorf("%s failed: %s: %s", req.GetName(), ready.Reason, ready.Message)
		}
		return meta.IsStatusConditionTrue(conditions, privacyv1alpha1.ConditionReady), nil
	})
}

// readExport reads the export that status.export of a ready AccessRequest names, checks it
// against its digest and returns the JSON.
func readExport(ctx context.Context, c client.Client, ar *privacyv1alpha1.AccessRequest) ([]byte, error) {
	ref := ar.Status.Export
	if ref == nil {
		return nil, fmt.Errorf("%s has no export yet", ar.Name)
	}
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ar.Namespace, Name: ref.SecretName}, &secret); err != nil {
		return nil, fmt.Errorf("reading the export of %s: %w", ar.Name, err)
	}
	data, ok := secret.Data[ref.Key]
	if !ok && ref.Delivery != nil {
		// Delivered to a bucket (spec.destination): files.json lists each file with its link.
		var err error
		if data, err = download(ctx, secret.Data["files.json"], ref.Key); err != nil {
			return nil, fmt.Errorf("export of %s: %w", ar.Name, err)
		}
	} else if !ok {
		return nil, fmt.Errorf("export Secret %s has no key %s", ref.SecretName, ref.Key)
	}
	// The digest is of the stored bytes, before decompression: "sha256:<hex>".
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != strings.TrimPrefix(ref.SHA256, "sha256:") {
		return nil, fmt.Errorf("export Secret %s does not match the digest in the status of %s", ref.SecretName, ar.Name)
	}
	switch ref.Encoding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("export of %s: %w", ar.Name, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("export of %s: %w", ar.Name, err)
		}
	case "identity":
	default:
		return nil, fmt.Errorf("export of %s has an unknown encoding %q", ar.Name, ref.Encoding)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("export of %s is not JSON", ar.Name)
	}
	return data, nil
}

// download fetches file name of a delivered export through its link in files.json. The link is a
// credential: hand the person the file (or the link, over the portal's authenticated channel),
// never log it. The caller checks the digest.
func download(ctx context.Context, manifest []byte, name string) ([]byte, error) {
	var m struct {
		Files []struct {
			Name  string `json:"name"`
			Bytes int64  `json:"bytes"`
			URL   string `json:"url"`
		} `json:"files"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, errors.New("files.json is not JSON")
	}
	for _, f := range m.Files {
		if f.Name != name {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("the link to %s is not a URL", name)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) { // its text quotes the link
				err = ue.Err
			}
			return nil, fmt.Errorf("downloading %s: %w", name, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("downloading %s: %s", name, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, f.Bytes+1))
	}
	return nil, fmt.Errorf("files.json does not list %s", name)
}
