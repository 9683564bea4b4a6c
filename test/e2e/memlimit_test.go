package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManagerSetsGoMemoryLimitFromItsCgroup starts the manager binary in a memory cgroup limited
// to 256 MiB, as a Pod with the chart's default limit: the Go runtime's soft limit must be 90% of
// it, and GOMEMLIMIT, when set, must win. The manager is given no cluster, so it stops right after
// setting the limit.
func TestManagerSetsGoMemoryLimitFromItsCgroup(t *testing.T) {
	bin := managerBinary(t)
	dir, limitFile := memoryCgroup(t)
	limit := int64(256 << 20)
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(fmt.Sprint(limit)), 0o644); err != nil {
		t.Skipf("cannot limit the memory of a cgroup here: %v", err)
	}
	run := func(env ...string) string {
		t.Helper()
		// The shell moves itself into the cgroup, then becomes the manager.
		cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" --operator-namespace=dsr-system`, "sh", dir, bin)
		cmd.Env = append(os.Environ(), append(env, "KUBECONFIG="+filepath.Join(t.TempDir(), "none"), "KUBERNETES_SERVICE_HOST=")...)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := run()
	want := fmt.Sprintf(`"bytes":%d`, int64(float64(limit)*0.9))
	if !strings.Contains(out, "Go memory limit set from the cgroup") || !strings.Contains(out, want) {
		t.Errorf("no soft memory limit of %s from the cgroup; the manager said:\n%s", want, out)
	}
	if out := run("GOMEMLIMIT=100MiB"); strings.Contains(out, "Go memory limit set from the cgroup") {
		t.Errorf("GOMEMLIMIT was set, but the manager took the cgroup's limit:\n%s", out)
	}
}

// memoryCgroup creates a child memory cgroup (v2, else v1) and returns its directory and the name
// of its limit file; it skips the test where this machine does not let it.
func memoryCgroup(t *testing.T) (dir, limitFile string) {
	t.Helper()
	name := fmt.Sprintf("dsr-e2e-%d", os.Getpid())
	candidates := []struct{ parent, limit string }{
		{"/sys/fs/cgroup", "memory.max"},
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes"},
	}
	var problems []string
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c.parent, c.limit)); err != nil && c.limit == "memory.max" {
			// The root of a v2 hierarchy has no memory.max; a child does if memory is enabled.
			if b, err := os.ReadFile(filepath.Join(c.parent, "cgroup.subtree_control")); err != nil || !strings.Contains(string(b), "memory") {
				problems = append(problems, c.parent+": memory controller not enabled for children")
				continue
			}
		}
		d := filepath.Join(c.parent, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		t.Cleanup(func() { _ = os.Remove(d) })
		if _, err := os.Stat(filepath.Join(d, c.limit)); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		return d, c.limit
	}
	t.Skipf("cannot create a memory cgroup here: %s", strings.Join(problems, "; "))
	return "", ""
}
