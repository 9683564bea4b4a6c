package testenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

func TestStartServesTheCRDsAndStopRemovesEverything(t *testing.T) {
	env, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()

	for _, list := range []client.ObjectList{
		&privacyv1alpha1.DataStoreList{}, &privacyv1alpha1.ClusterDataStoreList{},
		&privacyv1alpha1.DeletionRequestList{}, &privacyv1alpha1.AccessRequestList{},
	} {
		if err := env.Client.List(ctx, list); err != nil {
			t.Errorf("listing %T: %v", list, err)
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "testenv-check"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}

	kubeconfig, err := clientcmd.Load(env.KubeConfig)
	if err != nil {
		t.Fatalf("KubeConfig does not parse: %v", err)
	}
	if len(kubeconfig.Clusters) != 1 {
		t.Errorf("KubeConfig has %d clusters, want 1", len(kubeconfig.Clusters))
	}

	pids := recordedPIDs(t, env.dir)
	if len(pids) != 2 {
		t.Fatalf("recorded %d control-plane processes (%v), want etcd and kube-apiserver", len(pids), pids)
	}
	dir := env.dir
	if err := env.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := env.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory %s still there after Stop (stat: %v)", dir, err)
	}
	for _, p := range pids {
		if p.alive() {
			t.Errorf("process %d still running after Stop", p.pid)
		}
	}
}

func TestStartExplainsMissingBinaries(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	_, err := Start()
	if err == nil {
		t.Fatal("Start succeeded without binaries")
	}
	for _, want := range []string{"etcd and kube-apiserver not found", "run make test (or hack/build-k8s.sh) to build them"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestBinaryAssetsDirectoryDefaultsToTheModulesBin(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "")
	root := t.TempDir()
	_, err := BinaryAssetsDirectory(root)
	want := filepath.Join(root, "bin", "k8s", K8sVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v does not name %s", err, want)
	}
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if err := os.WriteFile(filepath.Join(want, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := BinaryAssetsDirectory(root)
	if err != nil || got != want {
		t.Fatalf("BinaryAssetsDirectory = %q, %v; want %q", got, err, want)
	}
}

func TestModuleRootFindsGoMod(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "config", "crd", "bases")); err != nil {
		t.Errorf("module root %s has no config/crd/bases: %v", root, err)
	}
}

// startNamed starts sleep under a name that recordChildren takes for a control-plane process.
func startNamed(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(sleep, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestSweepKillsTheControlPlaneOfADeadOwnerOnly(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())

	orphan := startNamed(t, etcdName)
	orphanDir, err := newStateDir()
	if err != nil {
		t.Fatal(err)
	}
	recordChildren(orphanDir)
	if pids := recordedPIDs(t, orphanDir); len(pids) != 1 || pids[0].pid != orphan.Process.Pid {
		t.Fatalf("recorded %v, want only the fake etcd %d", pids, orphan.Process.Pid)
	}
	// The owner is this test binary; make the record name a process that no longer exists.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadOwner := process{pid: gone.Process.Pid, startTime: "1"}
	if err := os.WriteFile(filepath.Join(orphanDir, ownerFile), []byte(deadOwner.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	kept := startNamed(t, apiserverName)
	keptDir, err := newStateDir()
	if err != nil {
		t.Fatal(err)
	}
	recordChildren(keptDir)

	sweepOrphans()

	waited := make(chan error, 1)
	go func() { waited <- orphan.Wait() }()
	select {
	case err := <-waited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("orphan ended with %v, want SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan of a dead owner is still running after the sweep")
	}
	if _, err := os.Stat(orphanDir); !os.IsNotExist(err) {
		t.Errorf("the dead owner's directory is still there (stat: %v)", err)
	}
	if _, err := os.Stat(keptDir); err != nil {
		t.Errorf("the live owner's directory was removed: %v", err)
	}
	if err := kept.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the live owner's process was killed: %v", err)
	}
}

func recordedPIDs(t *testing.T, dir string) []process {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, pidsFile))
	if err != nil {
		t.Fatalf("reading the pids record: %v", err)
	}
	var out []process
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		p, ok := parseProcess(line)
		if !ok {
			t.Fatalf("bad pids line %q", line)
		}
		out = append(out, p)
	}
	return out
}
