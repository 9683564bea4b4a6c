package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
	"github.com/dsr-operator/dsr-operator/internal/testenv"
	"github.com/dsr-operator/dsr-operator/internal/teststore"
)

// controlPlane is an envtest control plane of this test's own, because restarting the API server
// of the shared one (testenv does not expose it) would disturb every other test.
type controlPlane struct {
	environment *envtest.Environment
	cfg         *rest.Config
	client      client.Client
	// reap records the processes for testenv's orphan sweep (see recordForSweep).
	reap string
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	assets, err := testenv.BinaryAssetsDirectory(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, sub := range []string{"etcd", "certs"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "control-plane.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logf.Close() })
	cp := &controlPlane{environment: &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   env.Scheme,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: time.Minute},
		ControlPlane: envtest.ControlPlane{
			Etcd: &envtest.Etcd{Path: filepath.Join(assets, "etcd"), DataDir: filepath.Join(dir, "etcd"), Out: logf, Err: logf},
			// A fixed CertDir: a restarted API server keeps its port, its certificates and its
			// ServiceAccount signing key, as a restarted real one does.
			APIServer: &envtest.APIServer{Path: filepath.Join(assets, "kube-apiserver"), CertDir: filepath.Join(dir, "certs"), Out: logf, Err: logf},
		},
	}}
	cp.reap = newSweepDir(t)
	cfg, err := cp.environment.Start()
	cp.recordForSweep()
	t.Cleanup(func() {
		if err := cp.environment.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
		_ = os.RemoveAll(cp.reap)
	})
	if err != nil {
		t.Fatalf("starting a control plane: %v", err)
	}
	cp.cfg = cfg
	cp.client, err = client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// newSweepDir and recordForSweep write what testenv's orphan sweep reads (a directory under
// $TMPDIR/dsr-testenv with an "owner" and a "pids" file), so that a test binary killed by go
// test's timeout does not leave this control plane running either.
func newSweepDir(t *testing.T) string {
	t.Helper()
	base := filepath.Join(os.TempDir(), "dsr-testenv")
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, strconv.Itoa(os.Getpid())+"-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := procStartTime(os.Getpid()); ok {
		_ = os.WriteFile(filepath.Join(dir, "owner"), []byte(fmt.Sprintf("%d %s\n", os.Getpid(), st)), 0o600)
	}
	return dir
}

func (cp *controlPlane) recordForSweep() {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var lines []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(raw)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		name, rest := s[open+1:closing], strings.Fields(s[closing+1:])
		if len(rest) < 20 || rest[1] != strconv.Itoa(os.Getpid()) || (name != "etcd" && name != "kube-apiserver") {
			continue
		}
		lines = append(lines, fmt.Sprintf("%d %s", pid, rest[19]))
	}
	_ = os.WriteFile(filepath.Join(cp.reap, "pids"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// crashAPIServer SIGKILLs the API server (a graceful stop waits out the manager's open watches
// for longer than envtest allows) and lets envtest reap it, keeping its port, certificates and
// etcd for Start.
func (cp *controlPlane) crashAPIServer(t *testing.T) {
	t.Helper()
	certDir := cp.environment.ControlPlane.APIServer.CertDir
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), "kube-apiserver") || !strings.Contains(string(cmdline), certDir) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed++
		// envtest's Wait reaps it; Stop must find it exited, not signal a dead pid.
		eventually(t, 30*time.Second, func() (bool, string) {
			_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
			return os.IsNotExist(err), "the killed API server is not reaped yet"
		})
	}
	if killed != 1 {
		t.Fatalf("found %d kube-apiserver processes with cert dir %s, want 1", killed, certDir)
	}
	if err := cp.environment.ControlPlane.APIServer.Stop(); err != nil && !strings.Contains(err.Error(), "already finished") {
		t.Fatalf("reaping the killed API server: %v", err)
	}
}

func procStartTime(pid int) (string, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	s := string(raw)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(rest) < 20 {
		return "", false
	}
	return rest[19], true
}

func TestAPIServerRestartMidRunManagerReconnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cp := startControlPlane(t)
	c := cp.client
	create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}})
	ns := newNamespace(t, c, nil)
	pgDSN, err := teststore.SharedPostgres(t).CreateDatabase(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	shops := map[string]*shop{"pg": openShop(t, privacyv1alpha1.StoreTypePostgres, pgDSN), "lite": sqliteShop(t)}
	subjects, bystanders := people("apiserver", 10), people("apiserver-bystander", 2)
	names := setUpShops(t, c, ns, shops, subjects, bystanders, 2*time.Minute)
	release := holdOrders(t, shops["pg"])

	m := startManager(t, "manager", managerOptions{admin: c, cfg: cp.cfg})
	createRequests(t, c, ns, names, 0, len(names))
	eventually(t, settle, func() (bool, string) {
		n := waitingOnLocks(t, shops["pg"])
		return n >= 1, fmt.Sprintf("%d erasures waiting in postgres", n)
	})

	// The API server dies while erasures are under way; they finish in the database and their
	// status cannot be written.
	cp.crashAPIServer(t)
	release()
	eventually(t, settle, func() (bool, string) {
		n := waitingOnLocks(t, shops["pg"])
		refused := strings.Count(m.Log(), "connection refused")
		return n == 0 && refused > 0, fmt.Sprintf("%d erasures still waiting; the manager logged %d refused connections", n, refused)
	})
	if !m.Running() {
		t.Fatalf("the manager exited while the API server was down:\n%s", tail(m.logPath, 30))
	}
	if err := cp.environment.ControlPlane.APIServer.Start(); err != nil {
		t.Fatal(err)
	}
	cp.recordForSweep()

	drs := waitAllCompleted(t, c, ns, names, 2*settle)
	if !m.Running() {
		t.Fatal("the manager exited")
	}
	assertOutcome(t, c, drs, shops, subjects, bystanders)
	assertNoLeaks(t, c, ns, []*manager{m}, subjects)
}
