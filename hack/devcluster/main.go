// Command devcluster runs a local Kubernetes control plane (etcd and kube-apiserver, no nodes) for
// developing the operator: `make dev-cluster` starts it in the background with the CRDs installed
// and writes an admin kubeconfig; `make dev-cluster-down` stops it and removes its data.
//
//	devcluster up     start (or, when already running, say so and update the CRDs)
//	devcluster down   stop and remove the data
//	devcluster status exit 0 when running and healthy
//
// Everything lives in --dir (bin/dev): kubeconfig, devcluster.pid, *.log, and the etcd data and
// certificates. There are no nodes, so Pods never run: the operator runs on the host (`make run`).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	kubeconfigFile   = "kubeconfig"
	pidFile          = "devcluster.pid"
	controlPlaneFile = "controlplane.pids"
	lockFile         = "devcluster.lock"
	serveLog         = "devcluster.log"
	etcdLog          = "etcd.log"
	apiserverLog     = "kube-apiserver.log"
	contextName      = "dsr-dev"
)

// startTimeout covers a cold start on a loaded two-core machine; a warm start takes seconds.
const startTimeout = 3 * time.Minute

type options struct {
	dir    string
	assets string
	crds   string
}

func main() {
	opts := options{}
	fs := flag.NewFlagSet("devcluster", flag.ExitOnError)
	fs.StringVar(&opts.dir, "dir", "bin/dev", "directory for the kubeconfig, pid, logs and data")
	fs.StringVar(&opts.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with the etcd and kube-apiserver binaries")
	fs.StringVar(&opts.crds, "crds", "config/crd/bases", "directory of the CRDs to install")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: devcluster [flags] up|down|status")
		fs.PrintDefaults()
	}
	if len(os.Args) < 2 {
		fs.Usage()
		os.Exit(2)
	}
	command := os.Args[1]
	_ = fs.Parse(os.Args[2:])

	var err error
	for _, p := range []*string{&opts.dir, &opts.assets, &opts.crds} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				fail(err)
			}
		}
	}

	switch command {
	case "up":
		ctrllog.SetLogger(logr.Discard())
		err = up(opts)
	case "down":
		err = down(opts)
	case "status":
		err = status(opts)
	case "serve":
		ctrllog.SetLogger(funcr.New(func(prefix, args string) {
			fmt.Fprintln(os.Stderr, time.Now().Format(time.RFC3339), prefix, args)
		}, funcr.Options{}))
		err = serve(opts)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dev-cluster:", err)
	os.Exit(1)
}

func say(format string, args ...any) {
	fmt.Printf("dev-cluster: "+format+"\n", args...)
}

func (o options) path(name string) string { return filepath.Join(o.dir, name) }

// rel shortens paths under the working directory for messages.
func rel(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return path
}

// lock serialises up and down, so that two `make dev-cluster` never start two control planes.
func lock(o options) (func(), error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(o.path(lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}

func up(o options) error {
	unlock, err := lock(o)
	if err != nil {
		return err
	}
	defer unlock()

	if server, ok := readProcess(o.path(pidFile)); ok && server.alive() {
		cfg, err := loadConfig(o)
		if err == nil {
			err = healthy(cfg)
		}
		if err != nil {
			return fmt.Errorf("already running (pid %d) but its API server does not answer (%v); see %s, or restart with make dev-cluster-down dev-cluster",
				server.pid, err, rel(o.path(apiserverLog)))
		}
		if _, err := envtest.InstallCRDs(cfg, crdOptions(o)); err != nil {
			return fmt.Errorf("already running (pid %d), but updating the CRDs failed: %w", server.pid, err)
		}
		say("already running and healthy (pid %d); CRDs from %s updated", server.pid, rel(o.crds))
		sayHowToUse(o)
		return nil
	}

	if err := checkAssets(o); err != nil {
		return err
	}
	// A previous run that crashed or was killed leaves processes and data behind.
	if err := cleanUp(o); err != nil {
		return err
	}
	say("starting etcd and kube-apiserver from %s", rel(o.assets))
	started := time.Now()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.Create(o.path(serveLog))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "serve", "--dir", o.dir, "--assets", o.assets, "--crds", o.crds)
	// Its own session, and no file of ours but the log: make (or a CI pipe) must not wait for it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.After(startTimeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the control plane exited while starting (%v)\n--- %s ---\n%s\n--- %s ---\n%s",
				err, rel(o.path(serveLog)), logTail(o.path(serveLog), 15), rel(o.path(apiserverLog)), logTail(o.path(apiserverLog), 15))
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("the control plane did not become ready within %s; see %s and %s",
				startTimeout, rel(o.path(serveLog)), rel(o.path(apiserverLog)))
		case <-time.After(250 * time.Millisecond):
		}
		// serve writes the kubeconfig only once the CRDs are served.
		cfg, err := loadConfig(o)
		if err != nil || healthy(cfg) != nil {
			continue
		}
		say("ready in %s (pid %d); CRDs from %s installed", time.Since(started).Round(time.Second), cmd.Process.Pid, rel(o.crds))
		sayHowToUse(o)
		return nil
	}
}

func sayHowToUse(o options) {
	say("kubeconfig: %s   logs: %s", rel(o.path(kubeconfigFile)), rel(o.path("*.log")))
	say("try: kubectl --kubeconfig %s get crds   (stop with: make dev-cluster-down)", rel(o.path(kubeconfigFile)))
}

func checkAssets(o options) error {
	if o.assets == "" {
		return errors.New("--assets (or KUBEBUILDER_ASSETS) is not set")
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(o.assets, name)); err != nil {
			return fmt.Errorf("%s not found in %s: run hack/build-k8s.sh (make dev-cluster does)", name, o.assets)
		}
	}
	return nil
}

func crdOptions(o options) envtest.CRDInstallOptions {
	return envtest.CRDInstallOptions{
		Paths:              []string{o.crds},
		ErrorIfPathMissing: true,
		MaxTime:            time.Minute,
	}
}

// serve runs in the background until SIGTERM: it starts the control plane, writes the kubeconfig,
// and stops the control plane on the way out. Its output goes to devcluster.log.
func serve(o options) error {
	me, err := self()
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.path(pidFile), []byte(me.String()+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(o.path(pidFile))

	etcdOut, err := os.Create(o.path(etcdLog))
	if err != nil {
		return err
	}
	defer etcdOut.Close()
	apiserverOut, err := os.Create(o.path(apiserverLog))
	if err != nil {
		return err
	}
	defer apiserverOut.Close()
	for _, sub := range []string{"etcd", "certs"} {
		if err := os.MkdirAll(o.path(sub), 0o700); err != nil {
			return err
		}
	}

	env := &envtest.Environment{
		CRDInstallOptions:        crdOptions(o),
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
		ControlPlane: envtest.ControlPlane{
			Etcd: &envtest.Etcd{
				Path:    filepath.Join(o.assets, "etcd"),
				DataDir: o.path("etcd"),
				Out:     etcdOut,
				Err:     etcdOut,
			},
			APIServer: &envtest.APIServer{
				Path:    filepath.Join(o.assets, "kube-apiserver"),
				CertDir: o.path("certs"),
				Out:     apiserverOut,
				Err:     apiserverOut,
			},
		},
	}

	// Asked to stop while starting: finish starting, then stop, so nothing is left half-started.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	cfg, startErr := env.Start()
	recordControlPlane(o)
	if startErr != nil {
		return errors.Join(startErr, env.Stop())
	}
	if err := writeKubeconfig(o, cfg); err != nil {
		return errors.Join(err, env.Stop())
	}
	fmt.Fprintf(os.Stderr, "dev cluster ready at %s\n", cfg.Host)

	sig := <-stop
	fmt.Fprintf(os.Stderr, "received %s, stopping\n", sig)
	_ = os.Remove(o.path(kubeconfigFile))
	return env.Stop()
}

func writeKubeconfig(o options, cfg *rest.Config) error {
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters[contextName] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kubeconfig.AuthInfos[contextName+"-admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kubeconfig.Contexts[contextName] = &clientcmdapi.Context{
		Cluster:  contextName,
		AuthInfo: contextName + "-admin",
	}
	kubeconfig.CurrentContext = contextName
	// Written under another name and renamed, so that up never reads half a file.
	tmp := o.path(kubeconfigFile + ".tmp")
	if err := clientcmd.WriteToFile(*kubeconfig, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, o.path(kubeconfigFile))
}

func loadConfig(o options) (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", o.path(kubeconfigFile))
}

func healthy(cfg *rest.Config) error {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 5 * time.Second
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

func down(o options) error {
	if _, err := os.Stat(o.dir); os.IsNotExist(err) {
		say("not running")
		return nil
	}
	unlock, err := lock(o)
	if err != nil {
		return err
	}
	defer unlock()

	server, running := readProcess(o.path(pidFile))
	running = running && server.alive()
	if running {
		say("stopping (pid %d)", server.pid)
		_ = syscall.Kill(server.pid, syscall.SIGTERM)
		deadline := time.Now().Add(time.Minute)
		for server.alive() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if server.alive() {
			say("pid %d did not stop within a minute; killing it", server.pid)
			_ = syscall.Kill(server.pid, syscall.SIGKILL)
		}
	}
	if err := cleanUp(o); err != nil {
		return err
	}
	if running {
		say("stopped; data removed (logs kept in %s)", rel(o.path("*.log")))
	} else {
		say("not running; leftover data removed")
	}
	return nil
}

func status(o options) error {
	server, ok := readProcess(o.path(pidFile))
	if !ok || !server.alive() {
		return errors.New("not running (start it with make dev-cluster)")
	}
	cfg, err := loadConfig(o)
	if err == nil {
		err = healthy(cfg)
	}
	if err != nil {
		return fmt.Errorf("running (pid %d) but not healthy: %w", server.pid, err)
	}
	say("running and healthy (pid %d) at %s", server.pid, cfg.Host)
	return nil
}

// cleanUp kills control-plane processes left by a serve that died without stopping them, and
// removes the data, certificates, kubeconfig and records. The logs stay for a post-mortem.
func cleanUp(o options) error {
	if raw, err := os.ReadFile(o.path(controlPlaneFile)); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if p, ok := parseProcess(line); ok && p.alive() {
				say("killing leftover control-plane process %d", p.pid)
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
	}
	var errs []error
	for _, name := range []string{"etcd", "certs", kubeconfigFile, kubeconfigFile + ".tmp", pidFile, controlPlaneFile} {
		errs = append(errs, os.RemoveAll(o.path(name)))
	}
	return errors.Join(errs...)
}

// process identifies a process across pid reuse: the same pid with another start time is another
// process.
type process struct {
	pid       int
	startTime string
}

func (p process) String() string { return strconv.Itoa(p.pid) + " " + p.startTime }

// alive reports whether p is still the process it was when recorded. A zombie is not alive: an
// orphan's zombie stays until init reaps it, which in a container may be never.
func (p process) alive() bool {
	st, err := procStat(p.pid)
	return err == nil && st.startTime == p.startTime && st.state != "Z"
}

func parseProcess(line string) (process, bool) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return process{}, false
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return process{}, false
	}
	return process{pid: pid, startTime: fields[1]}, true
}

func readProcess(path string) (process, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return process{}, false
	}
	return parseProcess(strings.TrimSpace(string(raw)))
}

func self() (process, error) {
	st, err := procStat(os.Getpid())
	if err != nil {
		return process{}, err
	}
	return process{pid: os.Getpid(), startTime: st.startTime}, nil
}

// stat is what /proc/<pid>/stat says about a process.
type stat struct {
	name      string
	state     string // R, S, D, Z...
	ppid      int
	startTime string // in clock ticks since boot
}

func procStat(pid int) (stat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	s := string(raw)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return stat{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	// After the name: state(3) ppid(4) ... starttime(22), counted from 1 with pid and name.
	rest := strings.Fields(s[closing+1:])
	if len(rest) < 20 {
		return stat{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return stat{}, fmt.Errorf("unexpected /proc/%d/stat: %w", pid, err)
	}
	return stat{name: s[open+1 : closing], state: rest[0], ppid: ppid, startTime: rest[19]}, nil
}

// recordControlPlane writes the etcd and kube-apiserver children of this process to
// controlplane.pids; envtest starts them without a parent-death signal, so if serve is killed
// they outlive it and down must find them.
func recordControlPlane(o options) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var lines []string
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err != nil || st.ppid != os.Getpid() || (st.name != "etcd" && st.name != "kube-apiserver") {
			continue
		}
		lines = append(lines, process{pid: pid, startTime: st.startTime}.String())
	}
	_ = os.WriteFile(o.path(controlPlaneFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func logTail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
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
