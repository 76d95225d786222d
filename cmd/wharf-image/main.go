// Command wharf-image builds wharf's container image without a container
// engine (internal/ociimage) and prints its digest: what make image runs
// where no docker or podman engine does.
//
//	go run ./cmd/wharf-image -tables path/to/tables.yaml -platform linux/amd64 -o wharf-image.tar
//
// The tarball loads with docker load, and pushes with crane push (the digest
// does not change): deploy it by that digest (Terraform variable image).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wharfdata/wharf/internal/ociimage"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wharf-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tables := fs.String("tables", "", "the schema file to bake in (required: the image has no default schema)")
	platform := fs.String("platform", "linux/amd64", "the tasks' platform (Terraform cpu_architecture: X86_64 is linux/amd64, ARM64 linux/arm64)")
	version := fs.String("version", "dev", "the version to stamp")
	commit := fs.String("commit", "unknown", "the commit to stamp")
	out := fs.String("o", "wharf-image.tar", "the image tarball to write")
	root := fs.String("root", ".", "the repository's root")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	goos, goarch, ok := strings.Cut(*platform, "/")
	if *tables == "" || !ok || goos != "linux" || (goarch != "amd64" && goarch != "arm64") {
		fmt.Fprintln(stderr, "wharf-image: -tables is required, and -platform is linux/amd64 or linux/arm64")
		return 2
	}
	d, err := ociimage.ParseDockerfile(filepath.Join(*root, "deploy", "Dockerfile"))
	if err != nil {
		fmt.Fprintln(stderr, "wharf-image:", err)
		return 1
	}
	work, err := os.MkdirTemp("", "wharf-image-")
	if err != nil {
		fmt.Fprintln(stderr, "wharf-image:", err)
		return 1
	}
	defer os.RemoveAll(work)
	img, skipped, err := ociimage.Build(ociimage.Options{Root: *root, Dockerfile: d, GOOS: goos, GOARCH: goarch,
		Version: *version, Commit: *commit, Tables: *tables, Work: work})
	if err != nil {
		fmt.Fprintln(stderr, "wharf-image:", err)
		return 1
	}
	for _, s := range skipped {
		fmt.Fprintln(stderr, "wharf-image: left out", s)
	}
	digest, err := ociimage.Write(*out, "wharf:"+*version, img)
	if err != nil {
		fmt.Fprintln(stderr, "wharf-image:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", digest)
	fmt.Fprintf(stderr, "wharf-image: wrote %s (wharf:%s, %s); docker load -i %s, or crane push %s REPOSITORY:%s\n", *out, *version, *platform, *out, *out, *version)
	return 0
}
