package warehouse

import (
	"strings"
	"testing"
	"time"

	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/dialect"
	"github.com/wharfdata/wharf/warehouse/internal/whtest"
)

// testTables has a column of every type, and a child table.
const testTables = whtest.Tables

func parseSchema(t testing.TB, yaml string) *schema.Schema { return whtest.Schema(t, yaml) }

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Dialect = schema.Postgres
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no dialect", func(c *Config) { c.Dialect = "" }, "warehouse.dialect must be postgres or redshift"},
		{"bad dialect", func(c *Config) { c.Dialect = "mysql" }, "warehouse.dialect must be postgres or redshift"},
		{"no schema", func(c *Config) { c.Schema = "" }, "warehouse.schema must be set"},
		{"bad schema", func(c *Config) { c.Schema = "Public" }, "warehouse.schema: name"},
		{"leading slash", func(c *Config) { c.Prefix = "/events/" }, "s3.prefix must not start with /"},
		{"interval", func(c *Config) { c.LoadInterval = 0 }, "warehouse.load_interval must be positive"},
		{"max files", func(c *Config) { c.MaxFilesPerLoad = 0 }, "warehouse.max_files_per_load must be positive"},
		{"redshift role", func(c *Config) { c.Dialect = schema.Redshift }, "warehouse.iam_role is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.mod(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseDay(t *testing.T) {
	cases := []struct {
		prefix string
		want   string // "" for not a day partition
	}{
		{"events/ev/dt=2026-11-25/", "2026-11-25"},
		{"events/ev/dt=2026-13-25/", ""},
		{"events/ev/dt=2026-11-25", ""},
		{"events/ev/other/", ""},
		{"events/ev_tags/dt=2026-11-25/", ""},
	}
	for _, c := range cases {
		d, ok := parseDay("events/ev/", c.prefix)
		got := ""
		if ok {
			got = d.Format(time.DateOnly)
		}
		if got != c.want {
			t.Errorf("parseDay(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 80; n++ {
		want := time.Second << min(n-1, 20)
		if want > time.Hour {
			want = time.Hour
		}
		got := dialect.Backoff(time.Second, n)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("backoff(1s, %d) = %s, want %s ±20%%", n, got, want)
		}
	}
}
