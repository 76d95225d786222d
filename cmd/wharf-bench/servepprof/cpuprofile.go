//go:build wharf_bench_pprof

// This file is not a package of its own: bench.sh (BENCH_PPROF=1) compiles
// it into `wharf serve` through `go build -tags wharf_bench_pprof -overlay`,
// as if it were cmd/wharf/zz_bench_pprof.go, because serve's HTTP server
// has no /debug/pprof and the product is not changed for a benchmark.
//
// With WHARF_BENCH_CPUPROFILE=PATH set, the process profiles its CPU from
// start until it gets SIGUSR1 (or until WHARF_BENCH_CPUPROFILE_SECONDS,
// if set, have passed), then writes the profile to PATH and PATH.done.
package main

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"
)

func init() {
	path := os.Getenv("WHARF_BENCH_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		os.Stderr.WriteString("bench pprof: " + err.Error() + "\n")
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		os.Stderr.WriteString("bench pprof: " + err.Error() + "\n")
		f.Close()
		return
	}
	var limit <-chan time.Time
	if s, err := strconv.Atoi(os.Getenv("WHARF_BENCH_CPUPROFILE_SECONDS")); err == nil && s > 0 {
		limit = time.After(time.Duration(s) * time.Second)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		select {
		case <-usr1:
		case <-limit:
		}
		pprof.StopCPUProfile()
		f.Close()
		os.WriteFile(path+".done", nil, 0o644)
	}()
}
