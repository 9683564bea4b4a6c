package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/operator"
	"github.com/dsr-operator/dsr-operator/internal/receipt"
	"github.com/dsr-operator/dsr-operator/internal/requests"
)

// requestName is the name of request i, and of its identifiers Secret.
func requestName(prefix string, i int) string { return fmt.Sprintf("%s%07d", prefix, i) }

func requestIndex(prefix, name string) (int, bool) {
	if !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
	return i, err == nil
}

func deletionRequest(ns, name string) *privacyv1alpha1.DeletionRequest {
	return &privacyv1alpha1.DeletionRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: privacyv1alpha1.DeletionRequestSpec{RequestSpecCommon: privacyv1alpha1.RequestSpecCommon{
			Regulation: privacyv1alpha1.RegulationGDPR,
			Subject:    privacyv1alpha1.Subject{IdentifiersSecretRef: privacyv1alpha1.LocalObjectReference{Name: name}},
		}}}
}

// verifiedWatch records when each request of ns is first seen Verified=True. It is an informer:
// a reflector lists, watches and re-lists after any watch error, so no event is lost for good, and
// it costs the API server one watch instead of repeated lists of thousands of objects.
type verifiedWatch struct {
	prefix   string
	verified []time.Time
	seen     []bool
	done     atomic.Int64
	stop     context.CancelFunc
}

func watchVerified(t *testing.T, ctx context.Context, cfg *rest.Config, ns, prefix string, n int) *verifiedWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &verifiedWatch{prefix: prefix, verified: make([]time.Time, n), seen: make([]bool, n), stop: cancel}
	c, err := cache.New(rest.CopyConfig(cfg), cache.Options{
		Scheme:            operator.Scheme(),
		DefaultNamespaces: map[string]cache.Config{ns: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		t.Fatal(err)
	}
	inf, err := c.GetInformer(ctx, &privacyv1alpha1.DeletionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Handlers of one informer run one at a time, so seen needs no lock; done publishes verified.
	observe := func(obj any) {
		dr, ok := obj.(*privacyv1alpha1.DeletionRequest)
		if !ok || !meta.IsStatusConditionTrue(dr.Status.Conditions, privacyv1alpha1.ConditionVerified) {
			return
		}
		i, ok := requestIndex(prefix, dr.Name)
		if !ok || i >= n || w.seen[i] {
			return
		}
		w.seen[i] = true
		w.verified[i] = time.Now()
		w.done.Add(1)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the harness's informer did not sync")
	}
	return w
}

// createRequests is the portal: per request, the identifiers Secret then the DeletionRequest,
// portalConcurrency at a time. created[i] is taken just before the request's create call.
func createRequests(t *testing.T, ctx context.Context, c client.Client, ns, set string, n int, created []time.Time) {
	t.Helper()
	parallel(n, portalConcurrency, func(i int) {
		name := requestName("r", i)
		ids := identifiers(set, i)
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: identifiersLabel}, StringData: ids}); err != nil {
			t.Error(err)
			return
		}
		created[i] = time.Now()
		if err := c.Create(ctx, deletionRequest(ns, name)); err != nil {
			t.Error(err)
		}
	})
}

// floorWrites is the operator's writes per request by kind, which the API floor repeats.
type floorWrites struct {
	statusPatches, configMaps, configMapUpdates, events int
	// secretCreates are the derived values Secrets of linked data, written at acceptance.
	secretCreates int
	// secretGets are reads of the identifiers Secret; the floor proper has none (diagnostic
	// variants add the operator's).
	secretGets int
	// Templates taken from a finished request, so the floor's objects have the operator's sizes.
	status    *privacyv1alpha1.DeletionRequestStatus
	configMap *corev1.ConfigMap
	event     *eventsv1.Event
	secret    *corev1.Secret
}

func (f floorWrites) String() string {
	s := fmt.Sprintf("%d status patches, %d ConfigMap creates, %d ConfigMap updates and %d Event creates", f.statusPatches, f.configMaps, f.configMapUpdates, f.events)
	if f.secretCreates > 0 {
		s += fmt.Sprintf(", %d Secret creates", f.secretCreates)
	}
	if f.secretGets > 0 {
		s += fmt.Sprintf(", %d Secret GETs", f.secretGets)
	}
	return s
}

// floorWritesFrom rounds the operator's writes per request by kind; a write of any other kind is
// repeated as one more status patch.
func floorWritesFrom(counts apiCounts, n int) floorWrites {
	var f floorWrites
	for k, v := range counts {
		if !mutatingVerbs[strings.Fields(k)[0]] {
			continue
		}
		per := int(math.Round(v / float64(n)))
		switch k {
		case "POST configmaps":
			f.configMaps += per
		case "PUT configmaps":
			f.configMapUpdates += per
		case "POST events":
			f.events += per
		case "POST secrets":
			f.secretCreates += per
		default:
			f.statusPatches += per
		}
	}
	return f
}

// templates reads a finished request's status, receipt ConfigMap and one of the operator's events.
func (f *floorWrites) templates(t *testing.T, ctx context.Context, c client.Client, dr *privacyv1alpha1.DeletionRequest) {
	t.Helper()
	f.status = dr.Status.DeepCopy()
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: dr.Namespace, Name: dr.Status.Receipt.ConfigMapName}, &cm); err != nil {
		t.Fatal(err)
	}
	f.configMap = &cm
	var evs eventsv1.EventList
	if err := c.List(ctx, &evs, client.InNamespace(dr.Namespace), client.Limit(1)); err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) > 0 {
		f.event = &evs.Items[0]
	}
	if f.secretCreates > 0 {
		var secret corev1.Secret
		name := requests.DerivedName(dr.Name, derivedSecretSuffix)
		if err := c.Get(ctx, client.ObjectKey{Namespace: dr.Namespace, Name: name}, &secret); err != nil {
			t.Fatalf("the operator created Secrets, but not the derived values Secret %s: %v", name, err)
		}
		f.secret = &secret
	}
}

// derivedSecretSuffix names the Secret holding a request's derived values (controllers/request_linked.go).
const derivedSecretSuffix = "-derived"

// runAPIFloor is floor (b): a plain client creates the same objects as the portal (Secret and
// DeletionRequest, portalConcurrency at a time) while requestConcurrency workers make the
// operator's writes for each request as soon as it exists (status patches, the receipt
// ConfigMap, the event), with no store and no reads behind them.
func runAPIFloor(t *testing.T, ctx context.Context, c client.Client, ns string, n int, f floorWrites) time.Duration {
	t.Helper()
	statusPatch := func(phase privacyv1alpha1.RequestPhase) []byte {
		st := f.status.DeepCopy()
		st.Phase = phase
		b, err := json.Marshal(map[string]any{"status": st})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Every patch changes the object, as the operator's do: the phase alternates.
	patches := [][]byte{statusPatch(privacyv1alpha1.PhaseErasing), statusPatch(privacyv1alpha1.PhaseCompleted)}
	ready := make(chan *privacyv1alpha1.DeletionRequest, n)
	start := time.Now()
	var workers sync.WaitGroup
	for range requestConcurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for dr := range ready {
				if err := floorWrite(ctx, c, dr, f, patches); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	parallel(n, portalConcurrency, func(i int) {
		name := requestName("f", i)
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: identifiersLabel},
			StringData: identifiers("floor", i)}); err != nil {
			t.Error(err)
			return
		}
		dr := deletionRequest(ns, name)
		if err := c.Create(ctx, dr); err != nil {
			t.Error(err)
			return
		}
		ready <- dr
	})
	close(ready)
	workers.Wait()
	return time.Since(start)
}

// floorWrite makes one request's writes in the operator's order: status patches, the receipt
// ConfigMap (created, then updated when the operator does), the last status patch, the event.
func floorWrite(ctx context.Context, c client.Client, dr *privacyv1alpha1.DeletionRequest, f floorWrites, patches [][]byte) error {
	patch := func(k int) error {
		return c.Status().Patch(ctx, dr, client.RawPatch(types.MergePatchType, patches[k%len(patches)]))
	}
	for range f.secretGets {
		if err := c.Get(ctx, client.ObjectKey{Namespace: dr.Namespace, Name: dr.Name}, &corev1.Secret{}); err != nil {
			return err
		}
	}
	owner := []metav1.OwnerReference{{APIVersion: privacyv1alpha1.GroupVersion.String(), Kind: "DeletionRequest", Name: dr.Name, UID: dr.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	// Linked data: the derived values are written at acceptance, before anything else.
	for k := range f.secretCreates {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: dr.Namespace, Name: fmt.Sprintf("%s-derived-%d", dr.Name, k),
			Labels: f.secret.Labels, OwnerReferences: owner}, Type: f.secret.Type, Data: f.secret.Data}
		if err := c.Create(ctx, secret); err != nil {
			return err
		}
	}
	for k := 0; k < f.statusPatches-1; k++ {
		if err := patch(k); err != nil {
			return err
		}
	}
	// With updates, the operator creates its receipt ConfigMap holding the plan and adds the
	// receipt to it.
	created := f.configMap.Data
	if f.configMapUpdates > 0 {
		created = map[string]string{receipt.PlanKey: f.configMap.Data[receipt.PlanKey]}
	}
	var last *corev1.ConfigMap
	for k := range f.configMaps {
		last = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: dr.Namespace, Name: fmt.Sprintf("%s-receipt-%d", dr.Name, k),
			Labels: f.configMap.Labels, OwnerReferences: owner}, Data: created}
		if err := c.Create(ctx, last); err != nil {
			return err
		}
	}
	for range f.configMapUpdates {
		if last == nil {
			break
		}
		last.Data = f.configMap.Data
		if err := c.Update(ctx, last); err != nil {
			return err
		}
	}
	if f.statusPatches > 0 {
		if err := patch(f.statusPatches - 1); err != nil {
			return err
		}
	}
	for k := range f.events {
		ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: dr.Namespace, Name: fmt.Sprintf("%s.%d", dr.Name, k)},
			EventTime: metav1.NowMicro(), Reason: "Verified", Action: "Verify", Type: corev1.EventTypeNormal,
			Note: "erasure verified", ReportingController: "dsr-operator", ReportingInstance: "bench",
			Regarding: corev1.ObjectReference{APIVersion: privacyv1alpha1.GroupVersion.String(), Kind: "DeletionRequest",
				Namespace: dr.Namespace, Name: dr.Name, UID: dr.UID}}
		if f.event != nil {
			ev.Reason, ev.Action, ev.Type, ev.Note = f.event.Reason, f.event.Action, f.event.Type, f.event.Note
			ev.ReportingController, ev.ReportingInstance = f.event.ReportingController, f.event.ReportingInstance
		}
		if err := c.Create(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// scrape GETs the API server's /metrics.
func scrape(t *testing.T, ctx context.Context, cfg *rest.Config) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// apiServerProfile saves a CPU profile of the API server itself.
func apiServerProfile(ctx context.Context, cfg *rest.Config, seconds int, file string) error {
	c := rest.CopyConfig(cfg)
	c.Timeout = time.Duration(seconds+60) * time.Second
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return err
	}
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(seconds)).DoRaw(ctx)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}

// managerProcess is the operator built from main.go and run as its own process, so that its peak
// RSS is its own.
type managerProcess struct {
	cmd     *exec.Cmd
	logPath string
	// pprof and metrics are loopback addresses in diagnostic runs, empty otherwise.
	pprof, metrics string
}

// buildManager builds the manager next to its profiles and returns its path.
func buildManager(t *testing.T, root, outDir string) string {
	t.Helper()
	bin := filepath.Join(outDir, "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}
	return bin
}

// startManager starts the manager bin, logging to logName in outDir.
func startManager(t *testing.T, bin, outDir, logName string, kubeconfig []byte, diag bool) *managerProcess {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &managerProcess{logPath: filepath.Join(outDir, logName)}
	logFile, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logFile.Close() })
	args := []string{"--kubeconfig", kc, "--operator-namespace", operatorNamespace,
		"--health-probe-bind-address", "0",
		"--request-concurrency", strconv.Itoa(requestConcurrency), "--store-concurrency", strconv.Itoa(storeConcurrency),
		"--kube-api-qps", strconv.Itoa(kubeAPIQPS), "--kube-api-burst", strconv.Itoa(kubeAPIBurst)}
	if diag {
		m.pprof, m.metrics = freeAddr(t), freeAddr(t)
		args = append(args, "--pprof-bind-address", m.pprof, "--metrics-bind-address", m.metrics, "--metrics-secure=false")
	} else {
		args = append(args, "--metrics-bind-address", "0")
	}
	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
	return m
}

func (m *managerProcess) pid() int { return m.cmd.Process.Pid }

func (m *managerProcess) stop() {
	if m.cmd.ProcessState == nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	}
}

// fetch saves GET http://addr+path into file.
func fetch(ctx context.Context, addr, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// identifiersLabel marks the bench's identifiers Secrets: the operator reads no other.
var identifiersLabel = map[string]string{privacyv1alpha1.SecretTypeLabel: privacyv1alpha1.SecretTypeIdentifiers}
