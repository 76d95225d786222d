package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// The Grafana dashboard is valid JSON, and every wharf_ metric its queries
// use is one the Go code registers (histogram series by their base name).
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana/wharf.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana/wharf.json: %v", err)
	}

	registered := registeredMetrics(t)

	metricRE := regexp.MustCompile(`\bwharf_\w+`)
	var used []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				base := m
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(m, suf); ok && registered[b] {
						base = b
					}
				}
				if !registered[base] {
					t.Errorf("panel %q uses %s, which the code does not register", p.Title, m)
				}
				if !slices.Contains(used, base) {
					used = append(used, base)
				}
			}
		}
	}
	for _, want := range []string{"wharf_received_messages_total", "wharf_deleted_messages_total", "wharf_deadletters_total",
		"wharf_visibility_extensions_total", "wharf_buffered_rows", "wharf_flushes_total", "wharf_flush_duration_seconds", "wharf_load_duration_seconds", "wharf_sqs_backlog_messages",
		"wharf_written_bytes_total", "wharf_written_files_total", "wharf_load_rows_total", "wharf_truncations_total",
		"wharf_load_lag_seconds", "wharf_oldest_held_message_age_seconds"} {
		if !slices.Contains(used, want) {
			t.Errorf("the dashboard has no panel for %s", want)
		}
	}
}

// registeredMetrics returns the wharf_ metric names the Go code registers:
// Name: "wharf_…" in an Opts literal, or prometheus.NewDesc("wharf_…", …).
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	registered := map[string]bool{}
	nameRE := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(wharf_\w+)"`)
	root := stacktest.RepoRoot()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range nameRE.FindAllStringSubmatch(string(b), -1) {
				registered[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(registered) < 20 {
		t.Fatalf("found only %d registered metrics: the scan is broken", len(registered))
	}
	return registered
}

// TestMetricsDocumented: docs/operations.md's Metrics section names exactly
// the wharf_ metrics the code registers, and no name has its unit before
// the end (Prometheus: wharf_written_bytes_total, not wharf_bytes_written_total).
func TestMetricsDocumented(t *testing.T) {
	registered := registeredMetrics(t)
	data, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, "\n## Metrics\n")
	if start < 0 {
		t.Fatal("docs/operations.md has no ## Metrics section")
	}
	section := doc[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bwharf_\w+`).FindAllString(section, -1) {
		documented[m] = true
	}
	for m := range registered {
		if !documented[m] {
			t.Errorf("%s is registered but not in docs/operations.md's Metrics section", m)
		}
	}
	for m := range documented {
		if !registered[m] {
			t.Errorf("docs/operations.md lists %s, which the code does not register", m)
		}
	}
	unitFirst := regexp.MustCompile(`^wharf_(bytes|rows|files|messages|seconds)_`)
	for m := range registered {
		if unitFirst.MatchString(m) {
			t.Errorf("%s: the unit comes last", m)
		}
	}
}
