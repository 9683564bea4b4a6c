package teststore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds how long a server may take to accept its first real connection.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a graceful shutdown before the process group is killed.
	stopTimeout = 20 * time.Second
	// portAttempts covers the race between releasing a probed port and the server binding it.
	portAttempts = 3
	// logTailBytes is how much of a server log goes into an error message.
	logTailBytes = 4096
	// dirPrefix marks directories this package owns, so stale ones can be swept.
	dirPrefix = "teststore-"
	// ownerFile records the pid of the test binary that owns a directory.
	ownerFile = "owner.pid"
)

// extraBinaryDirs are searched after PATH because distro packages put server binaries
// outside the PATH of an ordinary shell (Debian: /usr/sbin/mariadbd, /usr/lib/postgresql/N/bin).
func extraBinaryDirs() []string {
	pgDirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first; a lexical sort would put 9.6 after 15.
	sort.Slice(pgDirs, func(i, j int) bool { return pgMajor(pgDirs[i]) > pgMajor(pgDirs[j]) })
	return append(pgDirs, "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
}

func pgMajor(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// findBinary locates name via PATH and the distro directories. aptPackage names the package
// that provides it, so the error tells the reader exactly what to install.
func findBinary(name, aptPackage string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range extraBinaryDirs() {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("teststore: binary %q not found in PATH, /usr/lib/postgresql/*/bin, /usr/local/bin or /usr/sbin; "+
		"`make test` installs it with apt (package %s)", name, aptPackage)
}

// findSibling prefers a binary next to an already found one, so that e.g. initdb and postgres
// come from the same PostgreSQL major version even when several are installed.
func findSibling(of, name, aptPackage string) (string, error) {
	if resolved, err := filepath.EvalSymlinks(of); err == nil {
		p := filepath.Join(filepath.Dir(resolved), name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return findBinary(name, aptPackage)
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// pickPort is replaced in tests to simulate losing the race for a port.
var pickPort = freePort

// freePort asks the kernel for an unused loopback port. The port is released before the
// server binds it, so callers retry on "address in use".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("teststore: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(nBytes int) string {
	b := make([]byte, nBytes)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("teststore: crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}

// makeBaseDir creates the per-server temp directory and records the owning test binary,
// so a later run can remove directories left behind by a killed one.
func makeBaseDir(kind string) (string, error) {
	sweepStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix+kind+"-")
	if err != nil {
		return "", fmt.Errorf("teststore: create temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("teststore: write owner file: %w", err)
	}
	return dir, nil
}

var sweepOnce sync.Once

// sweepStaleDirs removes directories of test binaries that died without Close (their servers
// died with them through Pdeathsig, but the data stayed on disk).
func sweepStaleDirs() {
	sweepOnce.Do(removeStaleDirs)
}

func removeStaleDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range matches {
		raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or still being created
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// cleanEnv drops client variables (PGPASSWORD, PGHOST, MYSQL_PWD, ...) that could make a
// bootstrap tool or server behave differently from machine to machine.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "MYSQL") || strings.HasPrefix(kv, "MARIADB") ||
			strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// procAttr ties a child to the test binary: Pdeathsig kills it when the binary dies for any
// reason (Go sets it after the credential switch, which would otherwise clear it), and its own
// process group lets Stop kill helper children too and keeps terminal Ctrl-C away from it.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: cred}
}

// Linux sends Pdeathsig when the forking OS *thread* exits, not the process. Go retires a thread
// when a goroutine exits while locked to it, so forking from an arbitrary goroutine could kill a
// server mid-test. All forks therefore happen on one locked thread that lives as long as the binary.
var spawnRequests = sync.OnceValue(func() chan spawnRequest {
	requests := make(chan spawnRequest)
	go func() {
		runtime.LockOSThread() // never unlocked: this goroutine and its thread never exit
		for req := range requests {
			req.result <- req.cmd.Start()
		}
	}()
	return requests
})

type spawnRequest struct {
	cmd    *exec.Cmd
	result chan error
}

func startOnSpawnerThread(cmd *exec.Cmd) error {
	result := make(chan error, 1)
	spawnRequests() <- spawnRequest{cmd: cmd, result: result}
	return <-result
}

// runTool runs a one-shot bootstrap command (initdb, mariadb-install-db), appending its output
// to logPath; the error carries the log tail.
func runTool(ctx context.Context, logPath, dir string, cred *syscall.Credential, bin string, args ...string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("teststore: open log: %w", err)
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = procAttr(cred)
	err = startOnSpawnerThread(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("teststore: %s failed: %w\n--- log tail (%s) ---\n%s", filepath.Base(bin), err, logPath, logTail(logPath))
	}
	return nil
}

// process is one long-running server process with its output appended to a log file.
type process struct {
	name    string // for messages
	bin     string
	args    []string
	dir     string
	cred    *syscall.Credential
	logPath string

	cmd       *exec.Cmd
	exited    chan struct{}
	waitErr   error
	logOffset int64 // log size when this run started, to inspect only this run's output
}

func (p *process) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("teststore: open log: %w", err)
	}
	defer logf.Close() // the child holds its own copy of the descriptor
	if st, err := logf.Stat(); err == nil {
		p.logOffset = st.Size()
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Env = cleanEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = procAttr(p.cred)
	if err := startOnSpawnerThread(cmd); err != nil {
		return fmt.Errorf("teststore: start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return nil
}

func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends sig for a graceful shutdown and kills the whole process group if that takes
// longer than stopTimeout. Stopping a stopped process is a no-op.
func (p *process) stop(sig syscall.Signal) error {
	if p.cmd == nil {
		return nil
	}
	defer func() { p.cmd = nil }()
	if !p.running() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(pgid, sig)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("teststore: %s did not stop within %s and was killed\n--- log tail (%s) ---\n%s",
			p.name, stopTimeout, p.logPath, logTail(p.logPath))
	}
	// Helpers the server forked into its group must not keep files open in a dir about to be removed.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// runLog returns the output of the current run only.
func (p *process) runLog() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(p.logOffset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

// addressInUse reports whether the current run failed because its port was taken.
func (p *process) addressInUse() bool {
	l := strings.ToLower(p.runLog())
	return strings.Contains(l, "address already in use") || strings.Contains(l, "could not bind") ||
		strings.Contains(l, "do you already have another server running")
}

// startAndWait starts the process and polls probe until it succeeds. On failure the process is
// killed, so a later start does not mistake a half-started server for a running one.
func (p *process) startAndWait(ctx context.Context, probe func(context.Context) error) error {
	if err := p.start(); err != nil {
		return err
	}
	if err := p.waitReady(ctx, probe); err != nil {
		_ = p.stop(syscall.SIGKILL)
		return err
	}
	return nil
}

// waitReady polls probe until it succeeds, the process exits, or readyTimeout/ctx ends.
func (p *process) waitReady(ctx context.Context, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		lastErr := p.probeOnce(ctx, probe)
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("teststore: %s exited before accepting connections (%v)\n--- log tail (%s) ---\n%s",
				p.name, p.waitErr, p.logPath, logTail(p.logPath))
		case <-ctx.Done():
			return fmt.Errorf("teststore: %s not ready: %w (last attempt: %v)\n--- log tail (%s) ---\n%s",
				p.name, ctx.Err(), lastErr, p.logPath, logTail(p.logPath))
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// probeOnce aborts the attempt as soon as the server exits: if another process holds the port,
// the probe may be talking to it and would otherwise wait for its own timeout.
func (p *process) probeOnce(ctx context.Context, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	exited := p.exited // the watcher may outlive this call, and a restart replaces p.exited
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	return probe(ctx)
}

func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := st.Size() - logTailBytes
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(b, off)
	return string(b[:n])
}

// startWithPortRetry starts a server on a fresh port, retrying with a new port when another
// process grabbed the probed one first. launch must start the process for the given port and
// wait until it is ready; it returns the process so its log can be inspected.
func startWithPortRetry(ctx context.Context, launch func(ctx context.Context, port int) (*process, error)) (int, error) {
	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		port, err := pickPort()
		if err != nil {
			return 0, err
		}
		proc, err := launch(ctx, port)
		if err == nil {
			return port, nil
		}
		lastErr = err
		if proc == nil || !proc.addressInUse() {
			return 0, err
		}
	}
	return 0, fmt.Errorf("teststore: no free port after %d attempts: %w", portAttempts, lastErr)
}
