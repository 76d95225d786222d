package ociimage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options is one build.
type Options struct {
	Root       string     // the repository's root
	Dockerfile Dockerfile // deploy/Dockerfile, parsed
	GOOS       string     // the target platform, such as linux
	GOARCH     string     // amd64 or arm64
	Version    string     // stamped into the binary and the labels
	Commit     string
	Tables     string // the schema file to bake in ("": none, as the Dockerfile's default)
	Work       string // a scratch directory
}

// Binary builds the static binary as the Dockerfile's RUN does, with its
// -ldflags and its ARGs substituted, and returns its path.
func Binary(o Options) (string, error) {
	ldflags := regexp.MustCompile(`-ldflags="([^"]*)"`).FindStringSubmatch(strings.Join(o.Dockerfile.Run, "\n"))
	if ldflags == nil {
		return "", fmt.Errorf("no -ldflags=\"…\" in the Dockerfile's go build")
	}
	bin := filepath.Join(o.Work, "wharf")
	build := exec.Command("go", "build", "-trimpath", "-ldflags="+o.expand(ldflags[1]), "-o", bin, "./cmd/wharf")
	build.Dir = o.Root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+o.GOOS, "GOARCH="+o.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// expand substitutes the Dockerfile's ARGs the build sets.
func (o Options) expand(v string) string {
	args := map[string]string{"VERSION": o.Version, "COMMIT": o.Commit, "TARGETOS": o.GOOS, "TARGETARCH": o.GOARCH}
	return os.Expand(v, func(k string) string { return args[k] })
}

// Base returns the image without a schema: bin as the entrypoint, what
// distroless/static adds that wharf uses (the host's CA roots for TLS to
// AWS, the nonroot user), and the final stage's configuration. It also
// returns the optional files it left out.
func Base(o Options, bin string) (v1.Image, []string, error) {
	d := o.Dockerfile
	if len(d.Entrypoint) == 0 {
		return nil, nil, fmt.Errorf("the Dockerfile has no ENTRYPOINT in exec form")
	}
	files := []File{
		{Path: strings.TrimPrefix(d.Entrypoint[0], "/"), Src: bin, Mode: 0o755},
		{Path: "etc/ssl/certs/ca-certificates.crt", Src: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Optional: true},
		{Path: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), Mode: 0o644},
		{Path: "etc/group", Data: []byte("root:x:0:\nnonroot:x:65532:\n"), Mode: 0o644},
	}
	layerTar := filepath.Join(o.Work, "layer.tar")
	skipped, err := WriteLayer(layerTar, files)
	if err != nil {
		return nil, nil, err
	}
	layer, err := tarball.LayerFromFile(layerTar)
	if err != nil {
		return nil, nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "wharf internal/ociimage", Comment: "static wharf binary"}})
	if err != nil {
		return nil, nil, err
	}
	cfg := v1.Config{Entrypoint: d.Entrypoint, Cmd: d.Cmd, User: d.User, ExposedPorts: map[string]struct{}{}, Labels: map[string]string{}}
	for k, v := range d.Labels {
		cfg.Labels[k] = o.expand(v)
	}
	for k, v := range d.Env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	slices.Sort(cfg.Env)
	for _, p := range d.Expose {
		cfg.ExposedPorts[p+"/tcp"] = struct{}{}
	}
	if img, err = mutate.Config(img, cfg); err != nil {
		return nil, nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = o.GOOS, o.GOARCH
	img, err = mutate.ConfigFile(img, cf)
	return img, skipped, err
}

// WithSchema adds the schema file o.Tables to img where the Dockerfile's
// WHARF_SCHEMA points, as --build-arg TABLES does.
func WithSchema(o Options, img v1.Image) (v1.Image, error) {
	at := o.Dockerfile.Env["WHARF_SCHEMA"]
	if at == "" {
		return nil, fmt.Errorf("the Dockerfile sets no WHARF_SCHEMA")
	}
	schemaTar := filepath.Join(o.Work, "schema.tar")
	if _, err := WriteLayer(schemaTar, []File{{Path: strings.TrimPrefix(at, "/"), Src: o.Tables, Mode: 0o644}}); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromFile(schemaTar)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "wharf internal/ociimage", Comment: "TABLES=" + o.Tables}})
}

// Build builds the whole image: the binary, the base, and the schema when
// o.Tables is set.
func Build(o Options) (v1.Image, []string, error) {
	bin, err := Binary(o)
	if err != nil {
		return nil, nil, err
	}
	img, skipped, err := Base(o, bin)
	if err != nil || o.Tables == "" {
		return img, skipped, err
	}
	img, err = WithSchema(o, img)
	return img, skipped, err
}

// Write writes img as a tarball docker load (and crane push) reads, tagged
// tag, and returns the image's digest: what the Terraform variable image
// wants after the push.
func Write(path, tag string, img v1.Image) (v1.Hash, error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}
