package deploy

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/wharfdata/wharf/internal/ociimage"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// parseDockerfile reads deploy/Dockerfile as the image build does.
func parseDockerfile(t *testing.T, path string) ociimage.Dockerfile {
	t.Helper()
	d, err := ociimage.ParseDockerfile(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The Dockerfile is multi-stage, builds a static binary, runs it as the
// distroless nonroot user, and starts it in exec form so that it is PID 1.
// Issue 13, item 5: it builds for the platform asked (Go cross-compiles to
// TARGETOS/TARGETARCH on the builder's platform), stamps the version and
// commit into the binary and the OCI labels, and bakes in no demo schema.
func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t, "Dockerfile")
	if len(d.Froms) < 2 {
		t.Errorf("Dockerfile has %d stages, want a build stage and a run stage", len(d.Froms))
	}
	if final := d.Froms[len(d.Froms)-1]; !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?$`).MatchString(final) {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static…:nonroot", final)
	}
	if !slices.ContainsFunc(d.Run, func(r string) bool { return strings.Contains(r, "CGO_ENABLED=0") && strings.Contains(r, "go build") }) {
		t.Errorf("no RUN builds with CGO_ENABLED=0: %q", d.Run)
	}
	if d.User != "65532:65532" {
		t.Errorf("USER %q, want 65532:65532 (distroless nonroot, numeric so Kubernetes-style runAsNonRoot checks pass)", d.User)
	}
	if len(d.Entrypoint) != 1 || d.Entrypoint[0] != "/wharf" {
		t.Errorf("ENTRYPOINT %q, want [\"/wharf\"]", d.Entrypoint)
	}
	if len(d.Cmd) == 0 || d.Cmd[0] != "serve" {
		t.Errorf("CMD %q, want serve …", d.Cmd)
	}

	if d.FromFlags[0] != "--platform=$BUILDPLATFORM" {
		t.Errorf("build stage FROM flags %q, want --platform=$BUILDPLATFORM (cross-compile, no emulation)", d.FromFlags[0])
	}
	build := ""
	for _, r := range d.Run {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{"GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build lacks %s: %s", want, build)
		}
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  "${VERSION}",
		"org.opencontainers.image.revision": "${COMMIT}",
		"org.opencontainers.image.source":   "https://github.com/wharfdata/wharf",
	} {
		if d.Labels[k] != want {
			t.Errorf("LABEL %s=%q, want %q", k, d.Labels[k], want)
		}
	}
	if v, ok := d.Args["TABLES"]; !ok || v != "" {
		t.Errorf("ARG TABLES default %q: the image must have no default schema", v)
	}
	data, _ := os.ReadFile("Dockerfile")
	if bytes.Contains(data, []byte("deploy/local/tables.yaml")) {
		t.Error("the Dockerfile names the demo's schema")
	}
}

// Issue 13, item 5: the build context leaves out the repository's history,
// the local stack's state, binaries, node_modules and Terraform's state and
// variables, and keeps what the build needs.
func TestDockerignore(t *testing.T) {
	root := stacktest.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for path, want := range map[string]bool{
		".git/HEAD": true, ".stack/env": true, ".stack/artifacts/wharf-image.tar": true, "wharf": true,
		"deploy/local/node_modules/x/index.js": true, "deploy/terraform/terraform.tfstate": true,
		"deploy/terraform/prod.tfvars": true, "cmd/wharf/wharf.test": true,
		"go.mod": false, "go.sum": false, "cmd/wharf/main.go": false, "schema/schema.go": false,
		"deploy/Dockerfile": false, "deploy/local/tables.yaml": false, "internal/stacktest/stack.go": false,
	} {
		if got := dockerIgnored(t, patterns, path); got != want {
			t.Errorf(".dockerignore: %s ignored %v, want %v", path, got, want)
		}
	}
}

// dockerIgnored applies .dockerignore patterns as the builder does: each
// pattern matches the path or a directory above it, ** any number of
// directories, and a later !pattern takes a path back.
func dockerIgnored(t *testing.T, patterns []string, path string) bool {
	t.Helper()
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		re := "^" + strings.NewReplacer(`\*\*/`, "(.*/)?", `\*\*`, ".*", `\*`, "[^/]*", `\?`, "[^/]").Replace(regexp.QuoteMeta(p)) + "(/.*)?$"
		if regexp.MustCompile(re).MatchString(path) {
			ignored = !neg
		}
	}
	return ignored
}

// imagePlatform is the platform make image builds for by default
// (Makefile PLATFORM), which must be the task definitions' runtime_platform
// (Terraform's cpu_architecture default).
func imagePlatform(t *testing.T) (goos, goarch string) {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^PLATFORM \?= (\w+)/(\w+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile sets no default PLATFORM (PLATFORM ?= os/arch)")
	}
	return string(m[1]), string(m[2])
}

// Issue 13, item 5: make image builds for the platform the task
// definitions run on, and both task definitions take it from one variable.
func TestImagePlatformMatchesTaskDefinition(t *testing.T) {
	goos, goarch := imagePlatform(t)
	x := parseTerraform(t)
	def, _ := x.block("variable", "cpu_architecture").Body.Attributes["default"].Expr.Value(nil)
	want := map[string]string{"X86_64": "amd64", "ARM64": "arm64"}[def.AsString()]
	if goos != "linux" || goarch != want {
		t.Errorf("make image builds %s/%s; the task definitions run %s (linux/%s)", goos, goarch, def.AsString(), want)
	}
	for _, name := range []string{"serve", "backfill"} {
		b := x.block("resource", "aws_ecs_task_definition", name)
		if got := x.src(b.Range()); !strings.Contains(got, "cpu_architecture        = var.cpu_architecture") || !strings.Contains(got, `operating_system_family = "LINUX"`) {
			t.Errorf("task definition %s: runtime_platform is not LINUX/var.cpu_architecture", name)
		}
	}
}

// TestImageOffline builds the Dockerfile's image without Docker: the same
// static binary (CGO_ENABLED=0, for make image's platform, version and
// commit stamped) in one layer on an empty base, with the Dockerfile's
// entrypoint, command, user, environment and labels. It checks the binary
// is static, the image config, that the image holds no shell and no
// schema, and (as root) runs the image's file system in a chroot as user
// 65532: `wharf help`, `wharf version`, `wharf serve` refusing to start
// without a schema, and, with a schema added as TABLES would and the local
// stack, `wharf serve` until SIGTERM. The image with the demo's schema is
// written as a `docker load` tarball where the log says.
func TestImageOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	d := parseDockerfile(t, "Dockerfile")
	root := stacktest.RepoRoot()
	work := t.TempDir()

	goos, goarch := imagePlatform(t)
	const testVersion, testCommit = "v0.0.0-offline", "0123456789abcdef"
	// What make image builds where no engine runs (cmd/wharf-image).
	o := ociimage.Options{Root: root, Dockerfile: d, GOOS: goos, GOARCH: goarch, Version: testVersion, Commit: testCommit,
		Tables: filepath.Join(root, "deploy", "local", "tables.yaml"), Work: work}
	bin, err := ociimage.Binary(o)
	if err != nil {
		t.Fatal(err)
	}
	assertStatic(t, bin)
	schemaPath := d.Env["WHARF_SCHEMA"]
	bare, skipped, err := ociimage.Base(o, bin) // as built without TABLES
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		t.Logf("not in the image: %s", s)
	}
	// As built with --build-arg TABLES=deploy/local/tables.yaml.
	img, err := ociimage.WithSchema(o, bare)
	if err != nil {
		t.Fatal(err)
	}

	dir := os.Getenv("WHARF_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(root, ".stack", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "wharf-image.tar")
	tag, _ := name.NewTag("wharf:offline-test")
	if _, err := ociimage.Write(out, tag.String(), img); err != nil {
		t.Fatal(err)
	}
	t.Logf("image written (docker load -i %s)", out)

	// Read the image back from the tarball, as a registry or docker would.
	back, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Config.Entrypoint, []string{"/wharf"}) {
		t.Errorf("entrypoint %q", got.Config.Entrypoint)
	}
	if got.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", got.Config.User)
	}
	if got.OS != "linux" || got.Architecture != goarch {
		t.Errorf("platform %s/%s, want linux/%s", got.OS, got.Architecture, goarch)
	}
	for k, want := range map[string]string{"org.opencontainers.image.version": testVersion, "org.opencontainers.image.revision": testCommit} {
		if got.Config.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, got.Config.Labels[k], want)
		}
	}
	if _, ok := got.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 8080/tcp", got.Config.ExposedPorts)
	}
	rootfs := filepath.Join(work, "rootfs")
	entries := extract(t, back, rootfs)
	for _, sh := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/env"} {
		if entries[sh] {
			t.Errorf("the image holds %s: it needs no shell", sh)
		}
	}
	if !entries["wharf"] || !entries[strings.TrimPrefix(schemaPath, "/")] {
		t.Fatalf("the image lacks /wharf or %s: %v", schemaPath, entries)
	}

	bareRootfs := filepath.Join(work, "rootfs-bare")
	if bareEntries := extract(t, bare, bareRootfs); bareEntries[strings.TrimPrefix(schemaPath, "/")] {
		t.Errorf("the image built without TABLES holds a schema at %s", schemaPath)
	}

	if os.Geteuid() != 0 || goarch != runtime.GOARCH {
		t.Logf("not root, or the image is for %s: its file system is not run in a chroot", goarch)
		return
	}
	// The image's file system alone runs wharf, as nonroot.
	help := imageCommand(rootfs, got.Config, nil, "help")
	if outp, err := help.CombinedOutput(); err != nil || !strings.Contains(string(outp), "usage: wharf") {
		t.Fatalf("wharf help in the image's file system as 65532: %v\n%s", err, outp)
	}
	ver, err := imageCommand(rootfs, got.Config, nil, "--version").Output()
	if want := "wharf " + testVersion + " commit " + testCommit + " "; err != nil || !strings.HasPrefix(string(ver), want) {
		t.Errorf("wharf --version in the image: %v %q, want %q…", err, ver, want)
	}
	// Without a schema, serve refuses to start and says what it lacks.
	noSchema := imageCommand(bareRootfs, got.Config, []string{"WHARF_SQS_QUEUE_URL=q", "WHARF_S3_BUCKET=b",
		"WHARF_WAREHOUSE_DIALECT=postgres", "WHARF_WAREHOUSE_DSN=postgres://wharf@127.0.0.1:1/db"}, got.Config.Cmd...)
	outp, err := noSchema.CombinedOutput()
	if code := noSchema.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(outp), "no schema file at "+schemaPath) {
		t.Errorf("serve from the image without TABLES: exit %d (%v), want 2 and a missing schema named\n%s", code, err, outp)
	}
	runServeInImage(t, rootfs, got.Config)
}

// imageCommand runs the image's entrypoint with args in a chroot of rootfs,
// as the image's user, with the image's environment plus env.
func imageCommand(rootfs string, cfg v1.Config, env []string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(rootfs, cfg.Entrypoint[0]), args...)
	c.Path = cfg.Entrypoint[0] // resolved inside the chroot
	c.Env = append(slices.Clone(cfg.Env), env...)
	c.Dir = "/"
	var uid, gid uint32
	fmt.Sscanf(cfg.User, "%d:%d", &uid, &gid)
	c.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	return c
}

// runServeInImage runs `wharf serve` (the image's default command) from the
// image's file system against the local stack, waits for the container
// health check command to pass, then stops it with SIGTERM as ECS does.
func runServeInImage(t *testing.T, rootfs string, cfg v1.Config) {
	st := stacktest.Get(t)
	queue := st.Queue(t, map[string]string{"VisibilityTimeout": "30"})
	_, whSchema := st.Warehouse(t)
	_, mongoDB := st.Mongo(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var env []string
	for k, v := range st.Env {
		env = append(env, k+"="+v)
	}
	env = append(env, "WHARF_SQS_QUEUE_URL="+queue, "WHARF_S3_PREFIX="+st.Prefix(), "WHARF_S3_PATH_STYLE=true",
		"WHARF_WAREHOUSE_DIALECT=postgres", "WHARF_WAREHOUSE_SCHEMA="+whSchema, "WHARF_MONGO_DATABASE="+mongoDB,
		"WHARF_DRAIN_TIMEOUT=10s", "WHARF_SQS_WAIT_TIME=1s")
	args := slices.Clone(cfg.Cmd)
	for i := range args {
		if args[i] == ":8080" {
			args[i] = addr // the port of the image's CMD may be taken here
		}
	}
	var logs bytes.Buffer
	serve := imageCommand(rootfs, cfg, env, args...)
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	defer serve.Process.Kill()

	ready := stacktest.WaitFor(30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve from the image exited: %v\n%s", err, logs.String())
		default:
		}
		return imageCommand(rootfs, cfg, nil, "healthcheck", "--url", "http://"+addr+"/readyz").Run() == nil
	})
	if !ready {
		serve.Process.Kill()
		t.Fatalf("serve from the image not ready in 30s\n%s", logs.String())
	}
	resp, err := http.Get("http://" + addr + "/status?format=json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/status: %v %v", err, resp)
	}
	resp.Body.Close()
	serve.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve from the image: %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve from the image did not stop on SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", logs.String())
	}
}

// assertStatic fails unless path is an ELF with no interpreter and no
// shared libraries.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: not static", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v: not static", path, libs)
	}
}

// extract unpacks the image's flattened file system into dir and returns
// the paths it holds.
func extract(t *testing.T, img v1.Image, dir string) map[string]bool {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Clean("/"+h.Name), "/"), "/")
		seen[name] = true
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, os.FileMode(h.Mode)&0o777); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("unexpected %c entry %s in the image", h.Typeflag, h.Name)
		}
	}
	// The chroot is entered as 65532: it must be able to reach its files.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return seen
}
