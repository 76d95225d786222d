package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const okTables = "tables:\n- name: t\n  events: [t]\n  columns:\n  - {name: a, path: a, type: integer}\n"

func envOf(m map[string]string) Env { return mapEnv(m) }

func runWharf(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, envOf(env), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// A bad config exits 2 with a message that names the field.
func TestBadConfigNamesField(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "tables.yaml", okTables)
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unknown key", "sqs: {queue_url: q, poolers: 3}\n", nil, "unknown field poolers"},
		{"missing queue", "s3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n", nil, "sqs.queue_url is required"},
		{"pollers", "sqs: {queue_url: q, pollers: 0}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n", nil, "sqs.pollers must be 1..256"},
		{"in flight", "sqs: {queue_url: q, max_in_flight: 200000}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n", nil, "sqs.max_in_flight must be 10..120000"},
		{"bucket", "sqs: {queue_url: q}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n", nil, "s3.bucket is required"},
		{"dsn", "sqs: {queue_url: q}\ns3: {bucket: b}\n", nil, "warehouse.dsn is required"},
		{"dialect", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: oracle}\n", nil, "warehouse.dialect"},
		{"bad duration", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\nbatch: {max_age: soon}\n", nil, "not a duration"},
		{"bad size", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\nbatch: {max_bytes: lots}\n", nil, "not a size"},
		{"env duration", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n", map[string]string{"WHARF_BATCH_MAX_AGE": "forever"}, "batch.max.age (from WHARF_BATCH_MAX_AGE)"},
		{"drain", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\ndrain_timeout: 300s\n", nil, "drain_timeout must be between"},
		{"schema line", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\nschema: bad.yaml\n", nil, "line 2: table: name \"Bad\""},
		{"log level", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\nlog: {level: loud}\n", nil, "log.level"},
		{"merge timeout", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres, merge_timeout: 0s}\n", nil, "warehouse.merge_timeout must be positive"},
		{"reconcile interval", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres, reconcile_interval: 0s}\n", nil, "warehouse.reconcile_interval must be positive"},
		{"load concurrency", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres, load_concurrency: 0}\n", nil, "warehouse.load_concurrency must be positive"},
		{"files per load", "sqs: {queue_url: q}\ns3: {bucket: b}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n", map[string]string{"WHARF_WAREHOUSE_MAX_FILES_PER_LOAD": "0"}, "warehouse.max_files_per_load must be positive"},
	}
	writeFile(t, dir, "bad.yaml", "tables:\n- name: Bad\n  events: [x]\n")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "wharf.yaml", c.yaml)
			code, _, stderr := runWharf(t, c.env, "", "serve", "-c", cfg, "--http", "")
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 naming %q", code, stderr, c.want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, stderr := runWharf(t, nil, "", "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("exit %d %q", code, stderr)
	}
	if code, _, stderr := runWharf(t, nil, "", "load", "--nope"); code != 2 || !strings.Contains(stderr, "flag provided but not defined") {
		t.Fatalf("exit %d %q", code, stderr)
	}
}

// Every value can be overridden from WHARF_SECTION_KEY; relative paths are
// relative to the file.
func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "wharf.yaml", "sqs: {queue_url: from-file, pollers: 2}\nbatch: {max_age: 60s}\nschema: t.yaml\n")
	c, err := loadConfig(cfg, envOf(map[string]string{
		"WHARF_SQS_QUEUE_URL": "from-env", "WHARF_SQS_POLLERS": "5", "WHARF_BATCH_MAX_AGE": "5s",
		"WHARF_BATCH_MAX_BYTES": "64MiB", "WHARF_DRAIN_TIMEOUT": "10s", "WHARF_S3_PATH_STYLE": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SQS.QueueURL != "from-env" || c.SQS.Pollers != 5 || time.Duration(c.Batch.MaxAge) != 5*time.Second ||
		c.Batch.MaxBytes != 64<<20 || time.Duration(c.DrainTimeout) != 10*time.Second || !c.S3.PathStyle {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c.Schema != filepath.Join(dir, "t.yaml") {
		t.Fatalf("schema path %q is not relative to the config file", c.Schema)
	}
}

// A password in the DSN never reaches the output.
func TestSecretsRedacted(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "tables.yaml", okTables)
	cfg := writeFile(t, dir, "wharf.yaml", "s3: {bucket: b}\nwarehouse: {dialect: postgres, dsn: 'postgres://wharf:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=1'}\n")
	code, out, stderr := runWharf(t, map[string]string{"AWS_REGION": "us-east-1"}, "", "schema", "apply", "-c", cfg)
	if code != 1 || !strings.Contains(stderr, "127.0.0.1") {
		t.Fatalf("schema apply against a closed port: exit %d, %q; want a connection error", code, stderr)
	}
	if strings.Contains(out+stderr, "s3cr3t-pw") {
		t.Fatalf("password leaked: %s%s", out, stderr)
	}
	for _, s := range []string{"postgres://u:pw@h/db", "host=h password=pw user=u", "mongodb://u:pw@h:1/"} {
		if strings.Contains(redact(s), "pw") {
			t.Errorf("redact(%q) = %q", s, redact(s))
		}
	}
}

func TestFlattenCommand(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "tables.yaml", okTables)
	cfg := writeFile(t, dir, "wharf.yaml", "{}\n")
	code, out, _ := runWharf(t, nil, `{"event":"t","id":"1","a":5,"timestamp":"2024-01-02T03:04:05Z"}`+"\n", "flatten", "-c", cfg)
	want := `{"table":"t","row":{"event_id":"1","event_time":"2024-01-02T03:04:05.000000Z","received_at":`
	if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, `"a":5}}`) {
		t.Fatalf("exit %d, output %q", code, out)
	}
	code, out, _ = runWharf(t, nil, `{"event":"t","id":"2","a":"five"}`, "flatten", "-c", cfg)
	if code != 1 || !strings.Contains(out, `"deadletter":"type_mismatch"`) {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

// deadletter.replay_key comes from the file or WHARF_DEADLETTER_REPLAY_KEY,
// is a secret (scrubbed from every log line, never in an error) and must be
// long enough.
func TestReplayKeyConfig(t *testing.T) {
	const key = "replay-key-from-env-0123"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		wantErr    string
	}{
		{"from the environment", "schema: t.yaml\n", map[string]string{"WHARF_DEADLETTER_REPLAY_KEY": key}, ""},
		{"from the file", "schema: t.yaml\ndeadletter: {replay_key: " + key + "}\n", nil, ""},
		{"too short", "schema: t.yaml\ndeadletter: {replay_key: short-key}\n", nil, "deadletter.replay_key must be at least 16 bytes (it is 9)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, t.TempDir(), "wharf.yaml", tc.yaml)
			c, err := loadConfig(cfg, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			err = c.validate(need{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "short-key") {
					t.Fatalf("validate: %v, want %q without the key", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Deadletter.ReplayKey != key {
				t.Fatalf("key %q, %v", c.Deadletter.ReplayKey, err)
			}
			var buf strings.Builder
			newLogger(c, &buf).Warn("signing with " + key)
			if strings.Contains(buf.String(), key) || !strings.Contains(buf.String(), "signing with xxxxx") {
				t.Fatalf("log line: %s", buf.String())
			}
		})
	}
}

// warehouse.max_connections sizes the warehouse pool (8 by default, as it
// was hard-coded), from the file or WHARF_WAREHOUSE_MAX_CONNECTIONS, which
// the Terraform sets; 0 is refused with the field's name.
func TestConfigWarehouseMaxConnections(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "tables.yaml", okTables)
	cfg := writeFile(t, dir, "wharf.yaml", "s3: {bucket: b}\nwarehouse: {dialect: postgres, dsn: 'postgres://wharf@127.0.0.1:1/db'}\n")
	for _, c := range []struct {
		env  map[string]string
		want int32
	}{
		{nil, 8},
		{map[string]string{"WHARF_WAREHOUSE_MAX_CONNECTIONS": "3"}, 3},
	} {
		conf, err := loadConfig(cfg, envOf(c.env))
		if err != nil {
			t.Fatal(err)
		}
		if err := conf.validate(need{warehouse: true}); err != nil {
			t.Fatal(err)
		}
		pool, err := newPool(context.Background(), conf) // connects lazily: nothing listens on port 1
		if err != nil {
			t.Fatal(err)
		}
		if got := pool.Config().MaxConns; got != c.want {
			t.Errorf("env %v: pool of %d connections, want %d", c.env, got, c.want)
		}
		pool.Close()
	}
	code, _, stderr := runWharf(t, map[string]string{"WHARF_WAREHOUSE_MAX_CONNECTIONS": "0"}, "", "load", "-c", cfg)
	if code != 2 || !strings.Contains(stderr, "warehouse.max_connections must be 1..1000") {
		t.Fatalf("max_connections 0: exit %d, %q; want exit 2 naming warehouse.max_connections", code, stderr)
	}
}

// TestEnvClearsAndUnknown: a WHARF_ variable set to "" clears the file's
// value back to its default; an unset one leaves it; a WHARF_ variable that
// is not a configuration key is a config error naming it (issue 13, item 7).
func TestEnvClearsAndUnknown(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wharf.yaml")
	yaml := "sqs: {queue_url: q, pollers: 3}\ns3: {bucket: b}\nmongo: {uri: mongodb://m:27017}\nwarehouse: {dsn: postgres://x, dialect: postgres}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(cfg, mapEnv{})
	if err != nil || c.Mongo.URI != "mongodb://m:27017" || c.SQS.Pollers != 3 {
		t.Fatalf("no variables: %v, mongo.uri %q, sqs.pollers %d", err, c.Mongo.URI, c.SQS.Pollers)
	}
	c, err = loadConfig(cfg, mapEnv{"WHARF_MONGO_URI": "", "WHARF_SQS_POLLERS": ""})
	if err != nil {
		t.Fatal(err)
	}
	if c.Mongo.URI != "" || c.SQS.Pollers != defaultConfig().SQS.Pollers {
		t.Errorf("set to empty: mongo.uri %q, sqs.pollers %d; want cleared to the defaults (\"\", %d)", c.Mongo.URI, c.SQS.Pollers, defaultConfig().SQS.Pollers)
	}
	_, err = loadConfig(cfg, mapEnv{"WHARF_SQS_POLLER": "4"})
	var ce *configError
	if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), "WHARF_SQS_POLLER") {
		t.Errorf("a misspelt variable: %v; want a config error naming WHARF_SQS_POLLER", err)
	}
	for _, other := range []string{"WHARF_FAULT", "WHARF_REQUIRE_STACK", "WHARF_REDSHIFT_DSN", "WHARF_BENCH_CPUPROFILE"} {
		if _, err := loadConfig(cfg, mapEnv{other: "x"}); err != nil {
			t.Errorf("%s (read elsewhere): %v", other, err)
		}
	}
	if code, _, stderr := runWharf(t, map[string]string{"WHARF_WAREHOUSE_DIALCT": "postgres"}, "", "schema", "check", "-c", cfg); code != 2 || !strings.Contains(stderr, "WHARF_WAREHOUSE_DIALCT") {
		t.Errorf("wharf with a misspelt variable: exit %d, %q; want 2 naming it", code, stderr)
	}
}
