// Package ociimage builds wharf's container image without a container
// engine: the static binary and the files the Dockerfile's final stage
// holds, as layers on an empty image, with the Dockerfile's configuration
// (entrypoint, user, environment, labels, ports). make image uses it where
// no docker or podman engine runs, and deploy's tests build the same image
// with it.
package ociimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Dockerfile is what an image build reads from deploy/Dockerfile.
type Dockerfile struct {
	Froms      []string          // the image of each FROM, in order
	FromFlags  []string          // the flags of each FROM (--platform=…)
	Labels     map[string]string // the final stage's LABELs, unexpanded
	Run        []string          // RUN lines
	User       string            // the final stage's USER
	Entrypoint []string          // exec form only
	Cmd        []string
	Env        map[string]string // the final stage's ENV
	Expose     []string
	Args       map[string]string // ARG defaults
}

// ParseDockerfile reads the instructions an image build needs, joining
// continued lines.
func ParseDockerfile(path string) (Dockerfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Dockerfile{}, err
	}
	d := Dockerfile{Env: map[string]string{}, Args: map[string]string{}, Labels: map[string]string{}}
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || l == "" && cur.Len() == 0 {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	var bad error
	exec := func(what, rest string) []string {
		var v []string
		if err := json.Unmarshal([]byte(rest), &v); err != nil && bad == nil {
			bad = fmt.Errorf("%s: %s %s is not in exec form (a JSON array): %w", path, what, rest, err)
		}
		return v
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			var flags []string
			f := strings.Fields(rest)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				flags, f = append(flags, f[0]), f[1:]
			}
			d.Froms = append(d.Froms, f[0])
			d.FromFlags = append(d.FromFlags, strings.Join(flags, " "))
			d.Env = map[string]string{}
			d.Labels = map[string]string{}
			d.User = ""
		case "RUN":
			d.Run = append(d.Run, rest)
		case "USER":
			d.User = rest
		case "ENTRYPOINT":
			d.Entrypoint = exec("ENTRYPOINT", rest)
		case "CMD":
			d.Cmd = exec("CMD", rest)
		case "EXPOSE":
			d.Expose = append(d.Expose, strings.Fields(rest)...)
		case "ARG":
			for _, a := range strings.Fields(rest) {
				k, v, _ := strings.Cut(a, "=")
				d.Args[k] = v
			}
		case "LABEL":
			for _, m := range labelRE.FindAllStringSubmatch(rest, -1) {
				d.Labels[m[1]] = m[2]
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				d.Env[k] = v
			}
		}
	}
	return d, bad
}

// labelRE is one key="value" of a LABEL.
var labelRE = regexp.MustCompile(`([\w.-]+)="([^"]*)"`)

// File is one file of a layer.
type File struct {
	Path     string // in the image, without the leading /
	Src      string // a file to copy, or
	Data     []byte
	Mode     int64
	Optional bool // skip when src is missing
}

// WriteLayer writes files as a layer tarball owned by root, with their
// parent directories, at a fixed time (so the layer is reproducible), and
// returns the optional files it left out, with why.
func WriteLayer(path string, files []File) (skipped []string, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	when := time.Unix(0, 0)
	dirs := map[string]bool{}
	for _, file := range files {
		data := file.Data
		if file.Src != "" {
			b, err := os.ReadFile(file.Src)
			if err != nil {
				if file.Optional {
					skipped = append(skipped, fmt.Sprintf("%s: %v", file.Path, err))
					continue
				}
				return nil, err
			}
			data = b
		}
		var parents []string
		for d := filepath.Dir(file.Path); d != "."; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: when}); err != nil {
					return nil, err
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: file.Path, Mode: file.Mode, Size: int64(len(data)), ModTime: when}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return skipped, nil
}
