package validation

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

// TestEverySampleIsAccepted creates config/samples on the API server, as `kubectl apply -k
// config/samples` would: the samples are what newcomers copy, so they must pass the CRDs' rules.
func TestEverySampleIsAccepted(t *testing.T) {
	ctx := context.Background()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "privacy_v1alpha1_*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no samples in %s", dir)
	}

	// A sample that kustomization.yaml leaves out is never applied by kubectl apply -k.
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &kustomization); err != nil {
		t.Fatalf("config/samples/kustomization.yaml: %v", err)
	}
	for _, file := range files {
		if !slices.Contains(kustomization.Resources, filepath.Base(file)) {
			t.Errorf("config/samples/kustomization.yaml does not list %s", filepath.Base(file))
		}
	}

	namespace := createNamespace(t, "samples")
	kinds := map[string]int{}
	for _, file := range files {
		for _, obj := range readManifests(t, file) {
			namespaced, err := env.Client.IsObjectNamespaced(obj)
			if err != nil {
				t.Fatalf("%s: %s %s: %v", filepath.Base(file), obj.GetKind(), obj.GetName(), err)
			}
			if namespaced && obj.GetNamespace() == "" {
				obj.SetNamespace(namespace)
			}
			if namespaced {
				ensureNamespace(t, obj.GetNamespace())
			}
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Errorf("%s: %s %s was refused: %v", filepath.Base(file), obj.GetKind(), obj.GetName(), err)
				continue
			}
			kinds[obj.GetKind()]++
		}
	}
	for _, kind := range []string{"DataStore", "ClusterDataStore", "DeletionRequest", "AccessRequest", "Secret"} {
		if kinds[kind] == 0 {
			t.Errorf("config/samples has no accepted %s", kind)
		}
	}
}

func readManifests(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var objects []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(file), err)
		}
		if len(obj.Object) > 0 {
			objects = append(objects, obj)
		}
	}
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}
