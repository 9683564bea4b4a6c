// Package testenv starts a real control plane (etcd and kube-apiserver) with this project's CRDs
// installed, for tests. It is the one way tests get a Kubernetes API server:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
//
// (or Start and Stop it in a TestMain of one's own, when the package needs more set up).
//
// The binaries come from $KUBEBUILDER_ASSETS or, when it is unset, from bin/k8s/<K8sVersion> at
// the module root; `make test` (or hack/build-k8s.sh) builds them from source. Starting takes a
// few seconds, so start one Env per test binary and give each test its own namespace.
//
// A test binary killed by `go test -timeout` cannot stop its control plane; the next Start on the
// machine finds those orphans and kills them (see sweepOrphans).
package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	privacyv1alpha1 "github.com/dsr-operator/dsr-operator/api/v1alpha1"
)

// K8sVersion is the Kubernetes release whose binaries are used when $KUBEBUILDER_ASSETS is unset.
// Keep it equal to K8S_VERSION in the Makefile.
const K8sVersion = "1.37.2"

// Env is a running control plane. Config and Client act as a cluster admin (system:masters).
type Env struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client uses Scheme, which knows client-go's types and privacy.dsr.dev/v1alpha1.
	Client client.Client
	// Scheme holds client-go's built-in types and this project's API types.
	Scheme *runtime.Scheme
	// KubeConfig is an admin kubeconfig for Config, for tools run as separate processes.
	KubeConfig []byte

	environment *envtest.Environment
	dir         string
	// envtest writes the control plane's output here until Stop.
	logs []io.Closer

	stopOnce sync.Once
	stopErr  error
}

// Start starts etcd and kube-apiserver on free loopback ports and installs the CRDs from
// config/crd/bases. Call Stop when done.
func Start() (*Env, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	assets, err := BinaryAssetsDirectory(root)
	if err != nil {
		return nil, err
	}

	sweepOrphans()

	dir, err := newStateDir()
	if err != nil {
		return nil, err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: %w", err), os.RemoveAll(dir))
	}
	if err := privacyv1alpha1.AddToScheme(scheme); err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: %w", err), os.RemoveAll(dir))
	}

	etcdLog, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: %w", err), os.RemoveAll(dir))
	}
	apiserverLogPath := filepath.Join(dir, "kube-apiserver.log")
	apiserverLog, err := os.Create(apiserverLogPath)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: %w", err), etcdLog.Close(), os.RemoveAll(dir))
	}

	environment := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
		// Two cores shared by parallel test binaries, databases and compilers: the defaults (20s to
		// start, 10s for CRDs to be served) fail spuriously under that load.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
		CRDInstallOptions: envtest.CRDInstallOptions{
			MaxTime: time.Minute,
		},
		ControlPlane: envtest.ControlPlane{
			Etcd: &envtest.Etcd{
				Path:    filepath.Join(assets, "etcd"),
				DataDir: filepath.Join(dir, "etcd"),
				Out:     etcdLog,
				Err:     etcdLog,
			},
			APIServer: &envtest.APIServer{
				Path:    filepath.Join(assets, "kube-apiserver"),
				CertDir: filepath.Join(dir, "certs"),
				Out:     apiserverLog,
				Err:     apiserverLog,
			},
		},
	}
	for _, sub := range []string{"etcd", "certs"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, errors.Join(fmt.Errorf("testenv: %w", err), etcdLog.Close(), apiserverLog.Close(), os.RemoveAll(dir))
		}
	}

	cfg, startErr := environment.Start()
	// Recorded even after a failed start: a half-started control plane must still be reaped.
	recordChildren(dir)
	if startErr != nil {
		stopErr := environment.Stop()
		_ = etcdLog.Close()
		_ = apiserverLog.Close()
		tail := logTail(apiserverLogPath, 15)
		_ = os.RemoveAll(dir)
		return nil, errors.Join(fmt.Errorf("testenv: starting the control plane from %s: %w\n--- kube-apiserver log tail ---\n%s",
			assets, startErr, tail), stopErr)
	}

	env := &Env{
		Config:      cfg,
		Scheme:      scheme,
		KubeConfig:  environment.KubeConfig,
		environment: environment,
		dir:         dir,
		logs:        []io.Closer{etcdLog, apiserverLog},
	}
	env.Client, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: creating a client: %w", err), env.Stop())
	}
	return env, nil
}

// Main runs a package's tests with a control plane started into *env, and exits with their code
// (1 when the control plane does not start).
func Main(m interface{ Run() int }, env **Env) {
	os.Exit(func() int {
		var err error
		if *env, err = Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = (*env).Stop() }()
		return m.Run()
	}())
}

// Stop stops the control plane and removes its data. It may be called more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		e.stopErr = e.environment.Stop()
		for _, c := range e.logs {
			_ = c.Close()
		}
		if err := os.RemoveAll(e.dir); err != nil {
			e.stopErr = errors.Join(e.stopErr, err)
		}
		if e.stopErr != nil {
			e.stopErr = fmt.Errorf("testenv: stopping the control plane: %w", e.stopErr)
		}
	})
	return e.stopErr
}

// ModuleRoot is the directory of the nearest go.mod above the working directory (tests run in
// their package's directory, so this is the repository root).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod above the working directory; run the tests from inside the module")
		}
		dir = parent
	}
}

// BinaryAssetsDirectory is where the control-plane binaries are: $KUBEBUILDER_ASSETS, else
// <moduleRoot>/bin/k8s/<K8sVersion>. It fails, saying how to build them, when they are missing.
func BinaryAssetsDirectory(moduleRoot string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(moduleRoot, "bin", "k8s", K8sVersion)
	}
	var missing []string
	for _, name := range []string{"etcd", "kube-apiserver"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("testenv: %s not found in %s: run make test (or hack/build-k8s.sh) to build them",
			strings.Join(missing, " and "), dir)
	}
	return dir, nil
}

func logTail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	var ring []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		ring = append(ring, scanner.Text())
		if len(ring) > lines {
			ring = ring[1:]
		}
	}
	return strings.Join(ring, "\n")
}
