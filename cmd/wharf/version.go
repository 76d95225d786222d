package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and commit are stamped at build time, by the Dockerfile and
// make image: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
// The only package-level variables of the command: -X can set nothing else.
var (
	version = "dev"
	commit  = ""
)

// buildInfo returns the version, the commit (from -ldflags, else from the
// VCS stamp go build adds in a git checkout) and the Go version.
func buildInfo() (ver, rev, goVersion string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev, runtime.Version()
}

// cmdVersion prints one line: wharf VERSION commit COMMIT GO OS/ARCH.
func cmdVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError("version takes no arguments (got %q)", args[0])
	}
	ver, rev, gover := buildInfo()
	_, err := fmt.Fprintf(stdout, "wharf %s commit %s %s %s/%s\n", ver, rev, gover, runtime.GOOS, runtime.GOARCH)
	return err
}

// buildInfoGauge is wharf_build_info{version,commit,go_version}, always 1:
// the Prometheus way to show what a process runs.
func buildInfoGauge() prometheus.Collector {
	ver, rev, gover := buildInfo()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wharf_build_info", Help: "Always 1; its labels name the version, commit and Go version this process runs.",
	}, []string{"version", "commit", "go_version"})
	g.WithLabelValues(ver, rev, gover).Set(1)
	return g
}
