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

	// The metric names the code registers: Name: "wharf_…".
	registered := map[string]bool{}
	nameRE := regexp.MustCompile(`Name:\s*"(wharf_\w+)"`)
	root := stacktest.RepoRoot()
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, _ := os.ReadFile(path)
			for _, m := range nameRE.FindAllStringSubmatch(string(b), -1) {
				registered[m[1]] = true
			}
		}
		return nil
	})

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
	for _, want := range []string{"wharf_messages_received_total", "wharf_messages_deleted_total", "wharf_deadletters_total",
		"wharf_visibility_extensions_total", "wharf_rows_buffered", "wharf_flushes_total", "wharf_flush_seconds", "wharf_load_seconds",
		"wharf_bytes_written_total", "wharf_files_written_total", "wharf_load_rows_total", "wharf_truncations_total",
		"wharf_load_lag_seconds", "wharf_oldest_held_message_seconds"} {
		if !slices.Contains(used, want) {
			t.Errorf("the dashboard has no panel for %s", want)
		}
	}
}
