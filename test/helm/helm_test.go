// Package helm tests the Helm chart and the kustomize deployment: helm lint, the rendered objects
// against a real API server (server-side dry run), what the manager's Deployment and the RBAC
// objects say, and that the chart's generated parts (CRDs, role rules) equal config/.
package helm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

const (
	release   = "dsr"
	namespace = "dsr-system"
	chartDir  = "charts/dsr-operator"
)

var (
	env        *testenv.Env
	root       string
	kubeconfig string
	helm       string
	kubectl    string
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		if root, err = testenv.ModuleRoot(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Idempotent: it returns at once when bin/helm is the pinned version.
		build := exec.Command(filepath.Join(root, "hack", "build-helm.sh"))
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building helm with hack/build-helm.sh:", err)
			return 1
		}
		helm = filepath.Join(root, "bin", "helm")
		if kubectl, err = findKubectl(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if env, err = testenv.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = env.Stop() }()
		dir, err := os.MkdirTemp("", "helm-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		kubeconfig = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Helm installs into an existing namespace; a dry run cannot create one for the objects in it.
		if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// findKubectl prefers the kubectl on PATH, then the one next to the control-plane binaries.
func findKubectl() (string, error) {
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p, nil
	}
	assets, err := testenv.BinaryAssetsDirectory(root)
	if err != nil {
		return "", err
	}
	p := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("kubectl is neither on PATH nor in %s", assets)
	}
	return p, nil
}

// run runs a command in the module root against the envtest API server and returns its stdout.
func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(t, stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryRun(t *testing.T, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	// Helm must not read or write the caller's repositories, plugins or cache.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HELM_CACHE_HOME="+t.TempDir(),
		"HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}

// render runs helm template with the CRDs included, in the release namespace.
func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	all := append([]string{"template", release, chartDir, "--namespace", namespace, "--include-crds"}, args...)
	return decode(t, run(t, nil, helm, all...))
}

// decode splits a multi-document YAML stream into objects, skipping empty documents.
func decode(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) == 0 {
		t.Fatal("nothing rendered")
	}
	return objs
}

func encode(t *testing.T, objs []*unstructured.Unstructured) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, o := range objs {
		raw, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(raw)
	}
	return buf.Bytes()
}

// ref is how kubectl -o name names an object: resource.group/name (core: resource/name).
func ref(o *unstructured.Unstructured) string {
	gvk := o.GroupVersionKind()
	resource := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		resource += "." + gvk.Group
	}
	return resource + "/" + o.GetName()
}

// assertAccepted applies every object with a server-side dry run: the API server runs its
// validation (schemas, CEL rules, RBAC escalation checks, admission) and persists nothing.
// kubectl stops at the first refused object, so every object must come back by name.
func assertAccepted(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	out := run(t, encode(t, objs), kubectl, "apply", "--server-side", "--force-conflicts", "--dry-run=server",
		"--field-manager=helm-test", "-o", "name", "-f", "-")
	// kubectl names each accepted object without its namespace, so a Role rendered into three
	// namespaces is three equal lines: compare counts of lines, not a set.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	applied := map[string]bool{}
	for _, line := range lines {
		applied[strings.TrimSpace(line)] = true
	}
	for _, o := range objs {
		if !applied[ref(o)] {
			t.Errorf("%s (namespace %q) was not accepted; kubectl said:\n%s", ref(o), o.GetNamespace(), out)
		}
	}
	if len(lines) != len(objs) {
		t.Errorf("%d objects sent, %d accepted:\n%s", len(objs), len(lines), out)
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func kinds(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func as[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &v, true); err != nil {
		t.Fatalf("%s: %v", ref(o), err)
	}
	return &v
}

func TestChartLintsStrictly(t *testing.T) {
	for name, args := range map[string][]string{
		"defaults":       nil,
		"serviceMonitor": {"--set", "serviceMonitor.enabled=true"},
		"everything set": {"-f", writeValues(t, customValues)},
	} {
		t.Run(name, func(t *testing.T) {
			out := run(t, nil, helm, append([]string{"lint", "--strict", chartDir}, args...)...)
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("%s", out)
			}
		})
	}
}

// The schema refuses what would otherwise render a broken or surprising release.
func TestChartRefusesBadValues(t *testing.T) {
	for name, set := range map[string]string{
		"misspelt value":                    "imageTag=1.0",
		"no replicas":                       "replicaCount=0",
		"flag without dashes":               "extraArgs[0]=zap-log-level=debug",
		"port out of range":                 "metrics.port=70000",
		"ServiceMonitor without a Service":  "serviceMonitor.enabled=true,metrics.service.enabled=false",
		"existing ServiceAccount unnamed":   "serviceAccount.create=false",
		"unknown pull policy":               "image.pullPolicy=Sometimes",
		"misspelt nested value":             "serviceMonitor.enable=true",
		"non-string node selector (number)": "nodeSelector.zone=1",
		"spool size not a quantity":         "exportSpool.sizeLimit=lots",
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := tryRun(t, nil, helm, "template", release, chartDir, "--namespace", namespace, "--set", set); err == nil {
				t.Errorf("--set %s rendered:\n%s", set, out)
			}
		})
	}
}

func TestChartDefaultsAreAcceptedByTheAPIServer(t *testing.T) {
	objs := render(t)
	if sm := kinds(objs, "ServiceMonitor"); len(sm) != 0 {
		t.Errorf("a ServiceMonitor is rendered although serviceMonitor.enabled is false")
	}
	assertAccepted(t, objs)

	full := release + "-dsr-operator"
	sa := find(t, objs, "ServiceAccount", full)
	if sa.GetNamespace() != namespace {
		t.Errorf("ServiceAccount in %q", sa.GetNamespace())
	}
	dep := as[appsv1.Deployment](t, find(t, objs, "Deployment", full))
	if dep.Namespace != namespace || dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("Deployment namespace %q replicas %v", dep.Namespace, dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != sa.GetName() {
		t.Errorf("pod runs as %q, the chart creates %q", pod.ServiceAccountName, sa.GetName())
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "controller:0.1.0" {
		t.Errorf("image %q: the default tag is the appVersion", c.Image)
	}
	wantArgs := []string{"--leader-elect", "--operator-namespace=$(POD_NAMESPACE)", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081",
		"--store-deny-cidrs=169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32"}
	for _, a := range wantArgs {
		if !slices.Contains(c.Args, a) {
			t.Errorf("manager args %q lack %q", c.Args, a)
		}
	}
	// A shared cluster's defaults: no sqlite stores, no plain http, no allow list.
	for _, a := range c.Args {
		if a == "--enable-sqlite-stores" || a == "--allow-insecure-http" || strings.HasPrefix(a, "--store-allow-cidrs") {
			t.Errorf("default manager args hold %q", a)
		}
	}
	if np := kinds(objs, "NetworkPolicy"); len(np) != 0 {
		t.Errorf("a NetworkPolicy is rendered although networkPolicy.egress.enabled is false")
	}
	// $(POD_NAMESPACE) is expanded by the kubelet only when the variable is defined.
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAMESPACE" }); i < 0 ||
		c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE is not the pod's namespace: %+v", c.Env)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context %+v", sc)
	}
	port := func(name string) int32 {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		t.Errorf("no container port %q", name)
		return 0
	}
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || port(probe.HTTPGet.Port.String()) != 8081 {
			t.Errorf("probe of %s: %+v", path, probe)
		}
	}
	// controller-runtime writes the metrics certificate to the temp dir of a read-only root.
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
		t.Error("nothing writable mounted on /tmp")
	}

	svc := as[corev1.Service](t, find(t, objs, "Service", full+"-metrics"))
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%s, the pod has %q", k, v, dep.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "https" || svc.Spec.Ports[0].Port != 8443 || port(svc.Spec.Ports[0].TargetPort.String()) != 8443 {
		t.Errorf("metrics Service ports %+v", svc.Spec.Ports)
	}

	// Each binding gives the chart's ServiceAccount the role the chart renders.
	for _, b := range []struct{ kind, name, roleKind string }{
		{"ClusterRoleBinding", full + "-manager", "ClusterRole"},
		{"ClusterRoleBinding", full + "-metrics-auth", "ClusterRole"},
		{"RoleBinding", full + "-leader-election", "Role"},
	} {
		var roleRef rbacv1.RoleRef
		var subjects []rbacv1.Subject
		if b.kind == "RoleBinding" {
			rb := as[rbacv1.RoleBinding](t, find(t, objs, b.kind, b.name))
			roleRef, subjects = rb.RoleRef, rb.Subjects
			if rb.Namespace != namespace {
				t.Errorf("RoleBinding %s in %q", rb.Name, rb.Namespace)
			}
		} else {
			crb := as[rbacv1.ClusterRoleBinding](t, find(t, objs, b.kind, b.name))
			roleRef, subjects = crb.RoleRef, crb.Subjects
		}
		find(t, objs, b.roleKind, roleRef.Name)
		if roleRef.Kind != b.roleKind || len(subjects) != 1 || subjects[0].Kind != "ServiceAccount" ||
			subjects[0].Name != sa.GetName() || subjects[0].Namespace != namespace {
			t.Errorf("%s %s: roleRef %+v subjects %+v", b.kind, b.name, roleRef, subjects)
		}
	}
	if role := find(t, objs, "Role", full+"-leader-election"); role.GetNamespace() != namespace {
		t.Errorf("leader election Role in %q, want the release namespace", role.GetNamespace())
	}
	for _, r := range []string{"metrics-reader", "requester", "editor", "viewer", "portal"} {
		find(t, objs, "ClusterRole", full+"-"+r)
	}
	if crds := kinds(objs, "CustomResourceDefinition"); len(crds) != 5 {
		t.Errorf("%d CRDs rendered with --include-crds, want 5", len(crds))
	}
}

func TestChartServiceMonitor(t *testing.T) {
	objs := render(t, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prometheus")
	full := release + "-dsr-operator"
	sm := find(t, objs, "ServiceMonitor", full)
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor %s, labels %v", sm.GetAPIVersion(), sm.GetLabels())
	}
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := as[corev1.Service](t, find(t, objs, "Service", full+"-metrics"))
	if len(selector) == 0 {
		t.Fatal("the ServiceMonitor selects every Service")
	}
	for k, v := range selector {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s; the metrics Service has %v", k, v, svc.Labels)
		}
	}
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("endpoints %v", endpoints)
	}
	ep := endpoints[0].(map[string]any)
	if ep["port"] != svc.Spec.Ports[0].Name || ep["scheme"] != "https" || ep["path"] != "/metrics" {
		t.Errorf("endpoint %v, Service port %q", ep, svc.Spec.Ports[0].Name)
	}

	// envtest has no Prometheus Operator CRDs, so the API server would refuse the ServiceMonitor
	// for its kind alone; everything else must still be accepted.
	var rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "ServiceMonitor" {
			rest = append(rest, o)
		}
	}
	assertAccepted(t, rest)
}

// customValues sets every value away from its default.
const customValues = `
image: {repository: registry.example.com/privacy/dsr-operator, tag: "1.2.3", pullPolicy: Always}
imagePullSecrets: [{name: regcred}]
replicaCount: 2
requestConcurrency: 4
storeConcurrency: 2
receiptRecordsPeriod: 8760h
extraArgs: ["--zap-log-level=debug", "--kube-api-qps=100"]
serviceAccount: {create: false, name: existing-sa, annotations: {a: b}}
rbac: {userRoles: false}
resources: {requests: {cpu: 50m, memory: 128Mi}, limits: {memory: 512Mi}}
metrics: {port: 9443, service: {enabled: true, type: ClusterIP}}
probePort: 9081
podAnnotations: {example.com/team: privacy}
podLabels: {team: privacy}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: privacy, effect: NoSchedule}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector: {matchLabels: {app.kubernetes.io/name: dsr-operator}}
priorityClassName: system-cluster-critical
exportSpool: {sizeLimit: 3Gi}
`

func writeValues(t *testing.T, values string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChartValuesReachTheDeployment(t *testing.T) {
	objs := render(t, "-f", writeValues(t, customValues))
	assertAccepted(t, objs)
	full := release + "-dsr-operator"
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" {
			t.Errorf("ServiceAccount %s rendered although serviceAccount.create is false", o.GetName())
		}
		if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "-portal") {
			t.Errorf("user role %s rendered although rbac.userRoles is false", o.GetName())
		}
	}
	dep := as[appsv1.Deployment](t, find(t, objs, "Deployment", full))
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if *dep.Spec.Replicas != 2 || c.Image != "registry.example.com/privacy/dsr-operator:1.2.3" || c.ImagePullPolicy != corev1.PullAlways ||
		pod.ServiceAccountName != "existing-sa" || pod.PriorityClassName != "system-cluster-critical" ||
		pod.NodeSelector["kubernetes.io/os"] != "linux" || len(pod.Tolerations) != 1 || pod.Affinity == nil ||
		pod.Affinity.PodAntiAffinity == nil || len(pod.ImagePullSecrets) != 1 ||
		dep.Spec.Template.Labels["team"] != "privacy" || dep.Spec.Template.Annotations["example.com/team"] != "privacy" ||
		c.Resources.Limits.Memory().String() != "512Mi" {
		t.Errorf("values not applied:\n%s", encode(t, []*unstructured.Unstructured{find(t, objs, "Deployment", full)}))
	}
	for _, a := range []string{"--leader-elect", "--metrics-bind-address=:9443", "--health-probe-bind-address=:9081",
		"--request-concurrency=4", "--store-concurrency=2", "--receipt-records-period=8760h", "--zap-log-level=debug", "--kube-api-qps=100"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %q lack %q", c.Args, a)
		}
	}
	if i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "tmp" }); i < 0 ||
		pod.Volumes[i].EmptyDir == nil || pod.Volumes[i].EmptyDir.SizeLimit.String() != "3Gi" {
		t.Errorf("exportSpool.sizeLimit does not reach the /tmp emptyDir: %+v", pod.Volumes)
	}
	svc := as[corev1.Service](t, find(t, objs, "Service", full+"-metrics"))
	if svc.Spec.Ports[0].Port != 9443 {
		t.Errorf("metrics Service port %d", svc.Spec.Ports[0].Port)
	}
	crb := as[rbacv1.ClusterRoleBinding](t, find(t, objs, "ClusterRoleBinding", full+"-manager"))
	if crb.Subjects[0].Name != "existing-sa" {
		t.Errorf("manager role bound to %+v", crb.Subjects)
	}
}

func TestKustomizeDeploymentIsAcceptedByTheAPIServer(t *testing.T) {
	objs := decode(t, run(t, nil, kubectl, "kustomize", "config/default"))
	assertAccepted(t, objs)
	for _, want := range []struct{ kind, name string }{
		{"Deployment", "dsr-controller-manager"}, {"ClusterRole", "dsr-manager-role"},
		{"ClusterRole", "dsr-privacy-portal-role"}, {"Role", "dsr-leader-election-role"},
		{"Service", "dsr-controller-manager-metrics-service"}, {"CustomResourceDefinition", "deletionrequests.privacy.dsr.dev"},
	} {
		find(t, objs, want.kind, want.name)
	}
	// make deploy replaces exactly this image with $(IMG).
	dep := as[appsv1.Deployment](t, find(t, objs, "Deployment", "dsr-controller-manager"))
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "controller:latest" {
		t.Errorf("config/default's image is %q; make deploy rewrites controller:latest", img)
	}
}

// docs/install.md sets the image with an overlay over config/default.
func TestKustomizeOverlayOfTheInstallGuide(t *testing.T) {
	// Outside the checkout; kustomize takes only relative paths to a base.
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ` + filepath.ToSlash(base) + `
images:
- name: controller
  newName: registry.example.com/dsr-operator
  newTag: 0.1.0
`
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	objs := decode(t, run(t, nil, kubectl, "kustomize", dir))
	dep := as[appsv1.Deployment](t, find(t, objs, "Deployment", "dsr-controller-manager"))
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/dsr-operator:0.1.0" {
		t.Errorf("the overlay's image is %q", img)
	}
	assertAccepted(t, objs)
}

// The chart's CRDs and role rules are generated from config/ by hack/sync-chart.sh (make
// manifests). Running the script afresh must reproduce the committed chart exactly.
func TestChartIsInSyncWithConfig(t *testing.T) {
	scratch := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "hack", "sync-chart.sh"))
	cmd.Env = append(os.Environ(), "CHART_DIR="+scratch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/sync-chart.sh: %v\n%s", err, out)
	}
	for _, sub := range []string{"crds", "files"} {
		want := readDir(t, filepath.Join(scratch, sub))
		got := readDir(t, filepath.Join(root, chartDir, sub))
		for _, name := range slices.Sorted(maps.Keys(want)) {
			if g, ok := got[name]; !ok {
				t.Errorf("%s/%s/%s is missing: run hack/sync-chart.sh (make manifests)", chartDir, sub, name)
			} else if !bytes.Equal(g, want[name]) {
				t.Errorf("%s/%s/%s is stale: run hack/sync-chart.sh (make manifests)", chartDir, sub, name)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("%s/%s/%s is not generated from config/: remove it", chartDir, sub, name)
			}
		}
	}
	if len(readDir(t, filepath.Join(scratch, "crds"))) != len(readDir(t, filepath.Join(root, "config", "crd", "bases"))) {
		t.Error("the script did not copy every CRD")
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = raw
	}
	return out
}

// The rendered roles grant exactly what config/rbac's roles grant, compared as parsed rules, so
// that a template that mangles or drops a rule fails even when the generated files are fresh.
func TestChartRolesEqualConfigRoles(t *testing.T) {
	objs := render(t)
	full := release + "-dsr-operator"
	for cfg, chart := range map[string]struct{ kind, name string }{
		"role.yaml":                   {"ClusterRole", full + "-manager"},
		"leader_election_role.yaml":   {"Role", full + "-leader-election"},
		"metrics_auth_role.yaml":      {"ClusterRole", full + "-metrics-auth"},
		"metrics_reader_role.yaml":    {"ClusterRole", full + "-metrics-reader"},
		"privacy_requester_role.yaml": {"ClusterRole", full + "-requester"},
		"privacy_editor_role.yaml":    {"ClusterRole", full + "-editor"},
		"privacy_viewer_role.yaml":    {"ClusterRole", full + "-viewer"},
		"privacy_portal_role.yaml":    {"ClusterRole", full + "-portal"},
	} {
		t.Run(cfg, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", cfg))
			if err != nil {
				t.Fatal(err)
			}
			var want rbacv1.ClusterRole // Role and ClusterRole rules decode alike.
			if err := yaml.UnmarshalStrict(raw, &want); err != nil {
				t.Fatal(err)
			}
			if len(want.Rules) == 0 {
				t.Fatalf("config/rbac/%s has no rules", cfg)
			}
			got := find(t, objs, chart.kind, chart.name)
			rules, _, _ := unstructured.NestedSlice(got.Object, "rules")
			gotRole := as[rbacv1.ClusterRole](t, &unstructured.Unstructured{Object: map[string]any{"rules": rules}})
			if !reflect.DeepEqual(gotRole.Rules, want.Rules) {
				t.Errorf("%s %s grants\n%+v\nconfig/rbac/%s grants\n%+v", chart.kind, chart.name, gotRole.Rules, cfg, want.Rules)
			}
		})
	}
}

// A real helm install, upgrade and uninstall against the API server: the objects are created and
// removed by Helm itself, and the CRDs (already present) survive the uninstall.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	ctx := context.Background()
	const rel, ns = "it", "helm-install"
	out := run(t, nil, helm, "install", rel, chartDir, "--namespace", ns, "--create-namespace",
		"--set", "image.repository=registry.example.com/dsr-operator", "--set", "image.tag=0.1.0")
	for _, want := range []string{"STATUS: deployed", "rollout status deployment/it-dsr-operator", "it-dsr-operator-portal", "it-dsr-operator-metrics-reader"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install output lacks %q:\n%s", want, out)
		}
	}
	var dep appsv1.Deployment
	key := client.ObjectKey{Namespace: ns, Name: "it-dsr-operator"}
	if err := env.Client.Get(ctx, key, &dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/dsr-operator:0.1.0" {
		t.Errorf("image %q", img)
	}
	var role rbacv1.ClusterRole
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "it-dsr-operator-manager"}, &role); err != nil || len(role.Rules) == 0 {
		t.Errorf("manager ClusterRole: %v, %d rules", err, len(role.Rules))
	}

	run(t, nil, helm, "upgrade", rel, chartDir, "--namespace", ns, "--reuse-values", "--set", "replicaCount=2")
	if err := env.Client.Get(ctx, key, &dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d after upgrade", *dep.Spec.Replicas)
	}

	run(t, nil, helm, "uninstall", rel, "--namespace", ns)
	if err := env.Client.Get(ctx, key, &dep); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment after uninstall: %v", err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "it-dsr-operator-manager"}, &role); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole after uninstall: %v", err)
	}
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "deletionrequests.privacy.dsr.dev"}, crd); err != nil {
		t.Errorf("the CRDs must survive helm uninstall: %v", err)
	}
}
