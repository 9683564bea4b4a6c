package bench

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux platform Go
// supports.
const clockTicks = 100

type procInfo struct {
	pid, ppid int
	comm      string
	// cpu is the process's own user+system time; children is that of its reaped children.
	cpu, children float64
}

func readProc(pid int) (procInfo, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	s := string(raw)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procInfo{}, false
	}
	// Counted from field 3 (state): ppid is field 4, utime..cstime fields 14-17.
	f := strings.Fields(s[closing+1:])
	if len(f) < 15 {
		return procInfo{}, false
	}
	num := func(i int) float64 { v, _ := strconv.ParseFloat(f[i-3], 64); return v / clockTicks }
	ppid, _ := strconv.Atoi(f[1])
	return procInfo{pid: pid, ppid: ppid, comm: s[open+1 : closing], cpu: num(14) + num(15), children: num(16) + num(17)}, true
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

// sampleCPU reads /proc. managerPID may be 0.
func sampleCPU(managerPID int) cpuSample {
	out := cpuSample{groups: map[string]float64{}}
	entries, err := os.ReadDir("/proc")
	if err == nil {
		procs := map[int]procInfo{}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if p, ok := readProc(pid); ok {
				procs[pid] = p
			}
		}
		self := os.Getpid()
		for _, p := range procs {
			// Walk up to the manager, or to a direct child of the harness.
			group, cur := "", p
			for depth := 0; depth < 64; depth++ {
				if cur.pid == self {
					group = "harness"
					break
				}
				if cur.pid == managerPID && managerPID != 0 {
					group = "manager"
					break
				}
				if cur.ppid == self {
					group = groupName(cur.comm)
					break
				}
				parent, ok := procs[cur.ppid]
				if !ok {
					break
				}
				cur = parent
			}
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
	if raw, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(raw), "\n")
		f := strings.Fields(line)
		if len(f) > 5 && f[0] == "cpu" {
			var total float64
			for i, v := range f[1:] {
				x, _ := strconv.ParseFloat(v, 64)
				// guest and guest_nice are already counted in user and nice.
				if i < 8 {
					total += x
				}
			}
			idle, _ := strconv.ParseFloat(f[4], 64)
			iowait, _ := strconv.ParseFloat(f[5], 64)
			out.total = total / clockTicks
			out.busy = (total - idle - iowait) / clockTicks
			out.machineOK = true
		}
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
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return anon, file
}

// peakRSSMiB is VmHWM of a running process.
func peakRSSMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) < 2 {
				break
			}
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
