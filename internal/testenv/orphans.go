package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// envtest starts etcd and kube-apiserver in their own process groups without a parent-death
// signal, so a test binary killed by `go test -timeout` (or ^C) leaves them running, each holding
// hundreds of megabytes on a machine that runs every test suite. Every Env therefore records its
// owner and its control-plane processes in a state directory, and Start reaps the processes of
// owners that are gone.

// stateBase holds one directory per Env: the etcd data, the certificates, the logs, and the
// "owner" and "pids" records.
func stateBase() string {
	return filepath.Join(os.TempDir(), "dsr-testenv")
}

const (
	ownerFile = "owner"
	pidsFile  = "pids"
	// The process names (comm) that recordChildren records.
	etcdName      = "etcd"
	apiserverName = "kube-apiserver"
)

// process identifies a process across pid reuse: the same pid with another start time is another
// process.
type process struct {
	pid       int
	startTime string
}

func (p process) String() string { return strconv.Itoa(p.pid) + " " + p.startTime }

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

// alive reports whether p is still the process it was when recorded. A zombie is not alive: an
// orphan's zombie stays until init reaps it, which in a container may be never.
func (p process) alive() bool {
	st, err := procStat(p.pid)
	return err == nil && st.startTime == p.startTime && st.state != "Z"
}

func self() (process, error) {
	pid := os.Getpid()
	st, err := procStat(pid)
	if err != nil {
		return process{}, err
	}
	return process{pid: pid, startTime: st.startTime}, nil
}

func newStateDir() (string, error) {
	base := stateBase()
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	dir, err := os.MkdirTemp(base, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	// Without /proc nothing can be reaped later, but the tests can still run.
	if owner, err := self(); err == nil {
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner.String()+"\n"), 0o600); err != nil {
			return "", errors.Join(fmt.Errorf("testenv: %w", err), os.RemoveAll(dir))
		}
	}
	return dir, nil
}

// recordChildren writes the control-plane children of this process to dir/pids, best effort: a
// failure only means that an orphan could not be reaped later.
func recordChildren(dir string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	me := os.Getpid()
	var lines []string
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err != nil || st.ppid != me || (st.name != etcdName && st.name != apiserverName) {
			continue
		}
		lines = append(lines, process{pid: pid, startTime: st.startTime}.String())
	}
	if len(lines) == 0 {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, pidsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// sweepOrphans kills the recorded control planes of Envs whose test binary is gone, and removes
// their directories. Directories of live owners are left alone, so concurrent test binaries are
// safe.
func sweepOrphans() {
	base := stateBase()
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, entry := range entries {
		if !entry.IsDir() {
			continue
		}
		dir := filepath.Join(base, entry.Name())
		raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			// A directory whose owner was never written is either being created right now or
			// was left by a binary that died at once; only the latter gets old.
			if info, statErr := entry.Info(); statErr == nil && time.Since(info.ModTime()) > time.Hour {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		owner, ok := parseProcess(strings.TrimSpace(string(raw)))
		if !ok || owner.alive() {
			continue
		}
		if raw, err := os.ReadFile(filepath.Join(dir, pidsFile)); err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if orphan, ok := parseProcess(line); ok && orphan.alive() {
					_ = syscall.Kill(orphan.pid, syscall.SIGKILL)
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}
