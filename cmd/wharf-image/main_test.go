package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// TestBuildPrintsDigest: wharf-image writes a tarball whose image has the
// digest it prints, the same on a second build (make image's offline path).
func TestBuildPrintsDigest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root := stacktest.RepoRoot()
	var digests []string
	for i := range 2 {
		out := filepath.Join(t.TempDir(), "img.tar")
		var stdout, stderr bytes.Buffer
		code := run([]string{"-root", root, "-tables", filepath.Join(root, "deploy", "local", "tables.yaml"), "-version", "v9.9.9", "-commit", "abc", "-o", out}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("build %d: exit %d\n%s", i, code, stderr.String())
		}
		printed := strings.TrimSpace(stdout.String())
		tag, _ := name.NewTag("wharf:v9.9.9")
		img, err := tarball.ImageFromPath(out, &tag)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil || d.String() != printed {
			t.Fatalf("printed %q, the tarball's image is %v (%v)", printed, d, err)
		}
		cf, err := img.ConfigFile()
		if err != nil || cf.Config.Labels["org.opencontainers.image.version"] != "v9.9.9" {
			t.Errorf("labels %v (%v), want the version stamped", cf.Config.Labels, err)
		}
		digests = append(digests, printed)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same tree: %s and %s, want one digest", digests[0], digests[1])
	}
	var stderr bytes.Buffer
	if code := run([]string{"-root", root}, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "-tables is required") {
		t.Errorf("no -tables: exit %d, %q; want 2", code, stderr.String())
	}
}
