package main

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readme returns README.md's text.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeLines returns the lines inside README.md's fenced code blocks.
func codeLines(text string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			in = !in
			continue
		}
		if in {
			out = append(out, l)
		}
	}
	return out
}

// flagNames returns the flags `wharf args... -h` lists.
func flagNames(t *testing.T, args ...string) []string {
	t.Helper()
	var out, errb strings.Builder
	code := run(context.Background(), append(args, "-h"), envOf(nil), strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("wharf %s -h: exit %d\n%s", strings.Join(args, " "), code, errb.String())
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s+-(\S+)`).FindAllStringSubmatch(errb.String()+out.String(), -1) {
		names = append(names, m[1])
	}
	return names
}

var (
	wharfCallRE  = regexp.MustCompile(`(?:^|[|$]\s*)wharf\s+([a-z]+)((?:\s+[a-z]+(?:\|[a-z]+)*)?)([^|<>]*)`)
	readmeFlagRE = regexp.MustCompile(`(?:^|[\s\[])--?([a-z][a-z0-9-]*)`)
)

// Every `wharf <command> --flag` in README.md's code blocks is a flag of
// that command (issue 13, item 10: the README showed `healthcheck --http`).
func TestReadmeCommandFlags(t *testing.T) {
	subcommands := map[string]bool{"schema": true, "deadletter": true}
	checked := 0
	for _, line := range codeLines(readme(t)) {
		for _, m := range wharfCallRE.FindAllStringSubmatch(line, -1) {
			cmd, rest := m[1], m[3]
			subs := []string{""}
			if sub := strings.TrimSpace(m[2]); sub != "" {
				if subcommands[cmd] {
					subs = strings.Split(sub, "|")
				} else {
					rest = m[2] + rest
				}
			}
			for _, f := range readmeFlagRE.FindAllStringSubmatch(rest, -1) {
				for _, sub := range subs {
					args := []string{cmd}
					if sub != "" {
						args = append(args, sub)
					}
					if !slices.Contains(flagNames(t, args...), f[1]) {
						t.Errorf("README: `wharf %s` has no flag -%s (in %q)", strings.Join(args, " "), f[1], strings.TrimSpace(line))
					}
					checked++
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d flags found in README.md's code blocks: the parser is broken", checked)
	}
}

// yamlKeys returns the dotted YAML keys of Config's fields.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || !f.IsExported() {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, yamlKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

// README.md's configuration table documents exactly the keys Config reads
// (issue 13, item 10).
func TestReadmeConfigTable(t *testing.T) {
	text := readme(t)
	start := strings.Index(text, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("README.md has no Configuration section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	documented := map[string]bool{}
	keyRE := regexp.MustCompile("`([a-z0-9_]+(?:\\.[a-z0-9_]+)*)`")
	for _, l := range strings.Split(section, "\n") {
		cells := strings.Split(l, "|")
		if len(cells) < 3 || !strings.HasPrefix(l, "| `") {
			continue
		}
		for _, m := range keyRE.FindAllStringSubmatch(cells[1], -1) {
			documented[m[1]] = true
		}
	}
	keys := yamlKeys(reflect.TypeOf(Config{}), "")
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("config key %s is not in README.md's configuration table", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("README.md's configuration table documents %s, which Config does not have", k)
	}
}
