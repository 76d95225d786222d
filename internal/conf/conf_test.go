package conf

import (
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Queue struct {
		URL  string   `yaml:"url"`
		Wait Duration `yaml:"wait"`
	} `yaml:"queue"`
	MaxBytes ByteSize `yaml:"max_bytes"`
	Workers  int      `yaml:"workers"`
	hidden   string
}

// A file's keys fill the struct and an unknown one is named with its line;
// a variable overrides a key, one set to "" restores the default, and a bad
// value names the key and the variable.
func TestDecodeAndApplyEnv(t *testing.T) {
	var c testConfig
	if err := Decode([]byte("queue:\n  url: q\n  wait: 5s\nmax_bytes: 2MiB\nworkers: 3\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Queue.URL != "q" || time.Duration(c.Queue.Wait) != 5*time.Second || c.MaxBytes != 2<<20 || c.Workers != 3 {
		t.Fatalf("decoded %+v", c)
	}
	if err := Decode([]byte("workers: 1\nwokers: 2\n"), &c); err == nil || !strings.Contains(err.Error(), "line 2: unknown field wokers") {
		t.Fatalf("unknown field: %v", err)
	}
	if err := Decode(nil, &c); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	var dflt testConfig
	dflt.Workers = 8
	env := map[string]string{"APP_QUEUE_URL": "q2", "APP_WORKERS": "", "APP_MAX_BYTES": "64KiB"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	known := map[string]bool{}
	if err := ApplyEnv(&c, &dflt, "APP", lookup, known); err != nil {
		t.Fatal(err)
	}
	if c.Queue.URL != "q2" || c.Workers != 8 || c.MaxBytes != 64<<10 || time.Duration(c.Queue.Wait) != 5*time.Second {
		t.Fatalf("after the environment: %+v", c)
	}
	if len(known) != 4 || !known["APP_QUEUE_WAIT"] {
		t.Fatalf("known %v", known)
	}
	env["APP_QUEUE_WAIT"] = "soon"
	if err := ApplyEnv(&c, &dflt, "APP", lookup, known); err == nil || !strings.HasPrefix(err.Error(), "queue.wait (from APP_QUEUE_WAIT): ") {
		t.Fatalf("a bad duration: %v", err)
	}
}
