// Package helm tests the Helm chart and the kustomize deployment against a real API server.
package helm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

var (
	env        *testenv.Env
	root       string
	kubeconfig string
	helm       string
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		if root, err = testenv.ModuleRoot(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command(filepath.Join(root, "hack", "build-helm.sh"))
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building helm:", err)
			return 1
		}
		helm = filepath.Join(root, "bin", "helm")
		if env, err = testenv.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = env.Stop() }()
		dir, err := os.MkdirTemp("", "helm-test")
		if err != nil {
			return 1
		}
		defer os.RemoveAll(dir)
		kubeconfig = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
			return 1
		}
		if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dsr-system"}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir())
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func TestChartLints(t *testing.T) {
	out := run(t, nil, helm, "lint", "--strict", "charts/dsr-operator")
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("%s", out)
	}
}

// applyDryRun sends every object to the API server with a server-side dry run.
func applyDryRun(t *testing.T, manifests []byte) string {
	t.Helper()
	return run(t, manifests, "kubectl", "apply", "--server-side", "--force-conflicts", "--dry-run=server", "--field-manager=helm-test", "-f", "-")
}

func TestChartIsAcceptedByTheAPIServer(t *testing.T) {
	rendered := run(t, nil, helm, "template", "dsr", "charts/dsr-operator", "--namespace", "dsr-system")
	for _, want := range []string{"kind: Deployment", "--leader-elect", "readOnlyRootFilesystem: true", "runAsNonRoot: true",
		"allowPrivilegeEscalation: false", "kind: ClusterRole", "name: dsr-dsr-operator-portal", "/healthz", "kind: Service"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("rendered chart lacks %q", want)
		}
	}
	if strings.Contains(rendered, "ServiceMonitor") {
		t.Error("ServiceMonitor rendered while disabled")
	}
	out := applyDryRun(t, []byte(rendered))
	if !strings.Contains(out, "deployment.apps/dsr-dsr-operator serverside-applied (server dry run)") {
		t.Errorf("%s", out)
	}
	with := run(t, nil, helm, "template", "dsr", "charts/dsr-operator", "--namespace", "dsr-system", "--set", "serviceMonitor.enabled=true")
	if !strings.Contains(with, "kind: ServiceMonitor") {
		t.Error("ServiceMonitor not rendered when enabled")
	}
}

func TestKustomizeDeploymentIsAcceptedByTheAPIServer(t *testing.T) {
	rendered := run(t, nil, "kubectl", "kustomize", "config/default")
	out := applyDryRun(t, []byte(rendered))
	for _, want := range []string{"deployment.apps/dsr-controller-manager", "clusterrole.rbac.authorization.k8s.io/dsr-manager-role", "clusterrole.rbac.authorization.k8s.io/dsr-privacy-portal-role"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q not applied:\n%s", want, out)
		}
	}
}

// The chart is generated from config/ by hack/sync-chart.sh; a stale chart fails here.
func TestChartMatchesConfig(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) != 4 {
		t.Fatalf("%v %d", err, len(bases))
	}
	chartCRDs, _ := filepath.Glob(filepath.Join(root, "charts", "dsr-operator", "crds", "*.yaml"))
	if len(chartCRDs) != len(bases) {
		t.Errorf("chart has %d CRDs, config %d: run hack/sync-chart.sh", len(chartCRDs), len(bases))
	}
	for _, b := range bases {
		want, _ := os.ReadFile(b)
		got, err := os.ReadFile(filepath.Join(root, "charts", "dsr-operator", "crds", filepath.Base(b)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("chart CRD %s is stale: run hack/sync-chart.sh", filepath.Base(b))
		}
	}
	for src, dst := range map[string]string{"role.yaml": "manager-rules.yaml", "privacy_portal_role.yaml": "portal-rules.yaml",
		"privacy_requester_role.yaml": "requester-rules.yaml", "privacy_editor_role.yaml": "editor-rules.yaml",
		"privacy_viewer_role.yaml": "viewer-rules.yaml", "leader_election_role.yaml": "leader-election-rules.yaml"} {
		cfg, _ := os.ReadFile(filepath.Join(root, "config", "rbac", src))
		i := bytes.Index(cfg, []byte("\nrules:"))
		if i < 0 {
			t.Fatalf("%s has no rules", src)
		}
		got, _ := os.ReadFile(filepath.Join(root, "charts", "dsr-operator", "files", dst))
		if !bytes.HasSuffix(got, cfg[i+1:]) {
			t.Errorf("chart rules %s differ from config/rbac/%s: run hack/sync-chart.sh", dst, src)
		}
	}
}
