package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dsr-operator/dsr-operator/internal/testenv"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// managerBinary builds the operator from main.go once per test binary: the faults below need it
// as a process of its own, one that can be SIGKILLed.
func managerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testenv.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "dsr-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(buildDir, "manager")
		cmd := exec.Command("go", "build", "-o", buildBin, ".")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build -o %s . (in %s): %w\n%s", buildBin, root, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func cleanupBuild() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// managerIdentity is the ServiceAccount the manager processes run as, bound to the permissions of
// expectedManagerRules and expectedLeaderElectionRules (rbac_test.go checks that
// config/rbac grants exactly those). Running every fault with them proves they are enough.
const managerServiceAccount = "dsr-e2e-manager"

var identities sync.Map // *rest.Config host -> kubeconfig path

// managerKubeconfig returns a kubeconfig file for the manager's ServiceAccount on the cluster of
// admin, creating the account and its bindings on first use.
func managerKubeconfig(t *testing.T, admin client.Client, cfg *rest.Config, dir string) string {
	t.Helper()
	if p, ok := identities.Load(cfg.Host); ok {
		return p.(string)
	}
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: managerServiceAccount}}
	objs := []client.Object{
		sa,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "dsr-e2e-manager"}, Rules: policyRules(expectedManagerRules)},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "dsr-e2e-manager"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "dsr-e2e-manager"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: managerServiceAccount}}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "dsr-e2e-leader-election"}, Rules: policyRules(expectedLeaderElectionRules)},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "dsr-e2e-leader-election"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "dsr-e2e-leader-election"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: managerServiceAccount}}},
	}
	for _, o := range objs {
		if err := admin.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](4 * 3600)}}
	if err := admin.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("requesting a token for the manager's ServiceAccount: %v", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["manager"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "manager", Namespace: operatorNamespace}
	kc.CurrentContext = "e2e"
	path := filepath.Join(dir, fmt.Sprintf("manager-%d.kubeconfig", time.Now().UnixNano()))
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	identities.Store(cfg.Host, path)
	return path
}

// manager is one operator process.
type manager struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	probe   int
	exited  chan struct{}
	waitErr error
}

type managerOptions struct {
	leaderElect bool
	// admin and cfg name the cluster; zero values mean env.
	admin client.Client
	cfg   *rest.Config
	extra []string
	// logLevel is --zap-log-level; default defaultLogLevel.
	logLevel string
}

// defaultLogLevel is the most verbose level below client-go's dumps of request and response bodies
// (level 8), so that the scan for identifiers reads everything else the operator can say.
// TestMostVerboseLogsHoldNoSecrets covers levels 8 and up.
const defaultLogLevel = "7"

// logDir keeps every manager log of the test binary, so that a failing test's logs can be read
// and so that leaks_test can grep all of them.
var (
	logDirOnce sync.Once
	logDir     string
	allLogsMu  sync.Mutex
	allLogs    []string
)

// keepOrRemoveLogs removes the managers' logs after a passing run and says where they are
// after a failing one.
func keepOrRemoveLogs(code int) {
	if logDir == "" {
		return
	}
	if code == 0 {
		_ = os.RemoveAll(logDir)
		return
	}
	fmt.Fprintf(os.Stderr, "e2e: the managers' logs are kept in %s\n", logDir)
}

func managerLogDir(t *testing.T) string {
	logDirOnce.Do(func() {
		var err error
		logDir, err = os.MkdirTemp("", "dsr-e2e-logs-")
		if err != nil {
			t.Fatal(err)
		}
	})
	return logDir
}

// startManager runs the operator as its own process and waits until its probes answer. It is
// killed when the test ends, if the test has not killed it.
func startManager(t *testing.T, name string, o managerOptions) *manager {
	t.Helper()
	if o.admin == nil {
		o.admin, o.cfg = env.Client, env.Config
	}
	if o.logLevel == "" {
		o.logLevel = defaultLogLevel
	}
	bin := managerBinary(t)
	dir := managerLogDir(t)
	kubeconfig := managerKubeconfig(t, o.admin, o.cfg, dir)
	port := freePort(t)
	m := &manager{t: t, name: name, probe: port, exited: make(chan struct{}),
		logPath: filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", sanitize(t.Name()), name, time.Now().UnixNano()))}
	logf, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	allLogsMu.Lock()
	allLogs = append(allLogs, m.logPath)
	allLogsMu.Unlock()
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--operator-namespace=" + operatorNamespace,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(port),
		"--zap-log-level=" + o.logLevel,
		// The shops of the tests include sqlite stores, which the binary serves only when asked.
		"--enable-sqlite-stores",
	}
	if o.leaderElect {
		args = append(args, "--leader-elect")
	}
	args = append(args, o.extra...)
	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	// Its own process group, so that a signal aimed at it reaches nothing else; Pdeathsig, so that
	// a test binary killed by go test's timeout does not leave it running.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting the manager: %v", err)
	}
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("manager %s log (%s), last lines:\n%s", m.name, m.logPath, tail(m.logPath, 40))
		}
	})
	deadline := time.Now().Add(settle)
	for {
		select {
		case <-m.exited:
			t.Fatalf("the manager exited at start (%v):\n%s", m.waitErr, tail(m.logPath, 40))
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the manager's readyz did not answer within %s:\n%s", settle, tail(m.logPath, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kill sends SIGKILL: no deferred function, no lease release, no graceful shutdown of anything.
func (m *manager) Kill() {
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
}

// Running reports whether the process is still alive.
func (m *manager) Running() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// Log returns what the manager wrote so far.
func (m *manager) Log() string {
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
