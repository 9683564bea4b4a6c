package bench

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// clockTicks is USER_HZ, the unit of the children's times in /proc/PID/stat: 100 on every Linux
// platform Go supports (procfs converts the process's own times itself).
const clockTicks = 100

type procInfo struct {
	pid, ppid int
	comm      string
	// cpu is the process's own user+system time; children is that of its reaped children.
	cpu, children float64
}

func readProc(p procfs.Proc) (procInfo, bool) {
	st, err := p.Stat()
	if err != nil {
		return procInfo{}, false
	}
	return procInfo{pid: st.PID, ppid: st.PPID, comm: st.Comm, cpu: st.CPUTime(),
		children: float64(st.CUTime+st.CSTime) / clockTicks}, true
}

// cpuSample is CPU seconds used so far, by group: the harness itself, the manager, and each server
// the harness started (with its helper processes), plus the whole machine's busy and total time.
type cpuSample struct {
	groups             map[string]float64
	busy, total        float64
	machineOK, groupOK bool
}

// groupName names a direct child of the harness by what it runs.
func groupName(comm string) string {
	switch {
	case strings.HasPrefix(comm, "postgres"):
		return "postgres"
	case strings.HasPrefix(comm, "mariadb"), strings.HasPrefix(comm, "mysqld"):
		return "mariadb"
	case strings.HasPrefix(comm, "redis"):
		return "redis"
	}
	return comm
}

// readProcs reads every process of the machine.
func readProcs(fs procfs.FS) (map[int]procInfo, error) {
	all, err := fs.AllProcs()
	if err != nil {
		return nil, err
	}
	procs := map[int]procInfo{}
	for _, p := range all {
		if info, ok := readProc(p); ok {
			procs[info.pid] = info
		}
	}
	return procs, nil
}

// groupOf walks up from p to the manager, or to a direct child of the harness, and names the
// group; "" for a process the benchmark did not start.
func groupOf(procs map[int]procInfo, p procInfo, managerPID int) string {
	self := os.Getpid()
	cur := p
	for depth := 0; depth < 64; depth++ {
		if cur.pid == self {
			return "harness"
		}
		if cur.pid == managerPID && managerPID != 0 {
			return "manager"
		}
		if cur.ppid == self {
			return groupName(cur.comm)
		}
		parent, ok := procs[cur.ppid]
		if !ok {
			return ""
		}
		cur = parent
	}
	return ""
}

// sampleCPU reads /proc. managerPID may be 0.
func sampleCPU(managerPID int) cpuSample {
	out := cpuSample{groups: map[string]float64{}}
	fs, fsErr := procfs.NewDefaultFS()
	if fsErr != nil {
		return out
	}
	procs, err := readProcs(fs)
	if err == nil {
		self := os.Getpid()
		for _, p := range procs {
			group := groupOf(procs, p, managerPID)
			if group == "" {
				continue
			}
			cpu := p.cpu
			// The harness's reaped children are go build and the like, not part of the run.
			if p.pid != self {
				cpu += p.children
			}
			out.groups[group] += cpu
		}
		out.groupOK = true
	}
	if st, err := fs.Stat(); err == nil {
		c := st.CPUTotal
		// guest and guest_nice are already counted in user and nice.
		total := c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal
		out.total = total
		out.busy = total - c.Idle - c.Iowait
		out.machineOK = true
	}
	return out
}

// cpuUse is the CPU seconds used between two samples, by group.
type cpuUse struct {
	groups      map[string]float64
	busy, total float64
}

func (s cpuSample) since(before cpuSample) cpuUse {
	u := cpuUse{groups: map[string]float64{}}
	for g, v := range s.groups {
		if d := v - before.groups[g]; d > 0 {
			u.groups[g] = d
		}
	}
	if s.machineOK && before.machineOK {
		u.busy, u.total = s.busy-before.busy, s.total-before.total
	}
	return u
}

func (u cpuUse) ours() float64 {
	var sum float64
	for _, v := range u.groups {
		sum += v
	}
	return sum
}

// String is one line: "manager 12.3, kube-apiserver 20.1, ... ; machine busy 50.0 of 60.0 core-s".
func (u cpuUse) String() string {
	names := make([]string, 0, len(u.groups))
	for g := range u.groups {
		names = append(names, g)
	}
	sort.Slice(names, func(i, j int) bool { return u.groups[names[i]] > u.groups[names[j]] })
	parts := make([]string, 0, len(names))
	for _, g := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f", g, u.groups[g]))
	}
	s := strings.Join(parts, ", ")
	if u.total > 0 {
		s += fmt.Sprintf("; machine busy %.1f of %.1f core-s, %.1f by processes the benchmark did not start", u.busy, u.total, max(0, u.busy-u.ours()))
	}
	return s
}

// rssMiB is a process's resident memory now, split into anonymous memory (heap, stacks) and file
// pages (mostly the binary's code), from /proc/PID/status.
func rssMiB(pid int) (anon, file float64) {
	status, err := procStatus(pid)
	if err != nil {
		return 0, 0
	}
	return float64(status.RssAnon) / (1 << 20), float64(status.RssFile) / (1 << 20)
}

// peakRSSMiB is VmHWM of a running process.
func peakRSSMiB(pid int) (float64, error) {
	status, err := procStatus(pid)
	if err != nil {
		return 0, err
	}
	if status.VmHWM == 0 {
		return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return float64(status.VmHWM) / (1 << 20), nil
}

func procStatus(pid int) (procfs.ProcStatus, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStatus{}, err
	}
	return p.NewStatus()
}

// threadTime is the run time of the benchmark's processes by group, summed over their live
// threads from /proc/PID/task/TID/schedstat: nanoseconds, where the process times of sampleCPU
// count in clock ticks of 10 ms, too coarse for one request of a tenth of a second. Threads that
// ended between two samples are missed; the long-lived servers and the manager keep theirs.
func threadTime(managerPID int) map[string]time.Duration {
	out := map[string]time.Duration{}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return out
	}
	procs, err := readProcs(fs)
	if err != nil {
		return out
	}
	for _, p := range procs {
		group := groupOf(procs, p, managerPID)
		if group == "" {
			continue
		}
		threads, err := fs.AllThreads(p.pid)
		if err != nil {
			continue
		}
		for _, th := range threads {
			if st, err := th.Schedstat(); err == nil {
				out[group] += time.Duration(st.RunningNanoseconds)
			}
		}
	}
	return out
}

// threadTimeSince formats the run time each group used since before, in milliseconds.
func threadTimeSince(before, after map[string]time.Duration) string {
	var parts []string
	for group, d := range after {
		if used := d - before[group]; used >= time.Millisecond/2 {
			parts = append(parts, fmt.Sprintf("%s %.1f", group, float64(used)/float64(time.Millisecond)))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ") + " ms"
}
