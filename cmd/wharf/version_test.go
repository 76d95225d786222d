package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// wharf version and wharf --version print the version, the commit and the
// Go version; a binary built with -ldflags -X carries the stamped ones.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, stderr := runWharf(t, nil, "", arg)
		if code != 0 || !strings.HasPrefix(out, "wharf dev commit ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("wharf %s: exit %d, %q %q", arg, code, out, stderr)
		}
	}
	if code, _, _ := runWharf(t, nil, "", "version", "extra"); code != 2 {
		t.Errorf("wharf version extra: exit %d, want 2", code)
	}
	if testing.Short() {
		return
	}
	bin := filepath.Join(t.TempDir(), "wharf")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-X main.version=v9.8.7 -X main.commit=0123abcd", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "wharf v9.8.7 commit 0123abcd " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if string(out) != want {
		t.Errorf("stamped binary: %q, want %q", out, want)
	}
}

// serve with no schema file (none in the config, none in the image, the
// default tables.yaml absent) refuses to start, exit 2, saying what to set.
func TestConfigServeWithoutSchema(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "wharf.yaml", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n")
	for _, env := range []map[string]string{nil, {"WHARF_SCHEMA": "/etc/wharf/tables.yaml"}} {
		code, _, stderr := runWharf(t, env, "", "serve", "-c", cfg, "--http", "")
		want := filepath.Join(dir, "tables.yaml")
		if env != nil {
			want = env["WHARF_SCHEMA"]
		}
		if code != 2 || !strings.Contains(stderr, "no schema file at "+want) || !strings.Contains(stderr, "WHARF_SCHEMA") {
			t.Errorf("env %v: exit %d, %q; want exit 2, no schema file at %s, and how to give one", env, code, stderr, want)
		}
	}
}
