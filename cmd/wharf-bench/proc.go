package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// procStat is what wharf-bench reads of /proc/PID/stat.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

func readStat(pid int) (procStat, error) {
	var s procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("read stat of %d: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return s, fmt.Errorf("read stat of %d: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
	s.ppid, _ = strconv.Atoi(f[1])
	s.utime, _ = strconv.ParseInt(f[11], 10, 64)
	s.stime, _ = strconv.ParseInt(f[12], 10, 64)
	s.cutime, _ = strconv.ParseInt(f[13], 10, 64)
	s.cstime, _ = strconv.ParseInt(f[14], 10, 64)
	return s, nil
}

// treeCPU returns the CPU seconds used so far by pid, its live descendants
// and the children it has reaped (PostgreSQL's backends, once they exit,
// count in the postmaster's cutime).
func treeCPU(pid int) (float64, error) {
	root, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	ticks := root.utime + root.stime + root.cutime + root.cstime
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	stats := map[int]procStat{}
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil || p == pid {
			continue
		}
		s, err := readStat(p)
		if err != nil {
			continue // exited meanwhile
		}
		stats[p] = s
		children[s.ppid] = append(children[s.ppid], p)
	}
	todo := append([]int(nil), children[pid]...)
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		s := stats[p]
		ticks += s.utime + s.stime + s.cutime + s.cstime
		todo = append(todo, children[p]...)
	}
	return float64(ticks) / clockTicks, nil
}

// memKiB returns a field of /proc/PID/status in KiB, such as VmHWM (peak
// resident set) or VmRSS.
func memKiB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v := strings.Fields(rest)
		if len(v) != 2 || v[1] != "kB" {
			return 0, fmt.Errorf("status of %d: %s is %q", pid, field, rest)
		}
		return strconv.ParseInt(v[0], 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	return 0, fmt.Errorf("status of %d has no %s", pid, field)
}

// cpuMeter measures the CPU seconds that named process trees spend between
// start and stop.
type cpuMeter struct {
	pids  map[string]int
	start map[string]float64
}

// parsePids reads "name=pid,name=pid".
func parsePids(s string) (map[string]int, error) {
	out := map[string]int{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("bad name=pid %q", kv)
		}
		out[name] = pid
	}
	return out, nil
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: map[string]float64{}}
	for name, pid := range pids {
		if s, err := treeCPU(pid); err == nil {
			m.start[name] = s
		}
	}
	if s, err := machineCPU(); err == nil {
		m.start[machineKey] = s
	}
	return m
}

// machineKey names, in a cpuMeter's result, the busy CPU seconds of the
// whole machine: what other work on a shared machine took shows as the
// difference from the named trees.
const machineKey = "machine"

// stop returns the CPU seconds each tree spent since newCPUMeter, and the
// machine's under machineKey; a tree that could not be read is left out.
func (m *cpuMeter) stop() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range m.pids {
		s0, ok := m.start[name]
		if !ok {
			continue
		}
		if s, err := treeCPU(pid); err == nil {
			out[name] = round(s-s0, 2)
		}
	}
	if s0, ok := m.start[machineKey]; ok {
		if s, err := machineCPU(); err == nil {
			out[machineKey] = round(s-s0, 2)
		}
	}
	return out
}

// machineCPU returns the busy CPU seconds of all CPUs since boot (the first
// line of /proc/stat, idle and iowait excluded).
func machineCPU() (float64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, fmt.Errorf("read /proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("read /proc/stat: first line %q", sc.Text())
	}
	var busy int64
	for i, v := range fields[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return float64(busy) / clockTicks, nil
}

// selfCPU returns this process's own CPU seconds.
func selfCPU() float64 {
	s, err := readStat(os.Getpid())
	if err != nil {
		return 0
	}
	return float64(s.utime+s.stime) / clockTicks
}
