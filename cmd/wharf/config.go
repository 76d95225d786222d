package main

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// Duration is a time.Duration written as "60s" in YAML and the environment.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 60s or 5m", n.Value)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written as 128MiB, 64MB, 1048576.
type ByteSize int64

var sizeRE = regexp.MustCompile(`^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$`)

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if m == nil {
		return fmt.Errorf("%q is not a size such as 128MiB", n.Value)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "B": 1, "KB": 1000, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m[2]]
	*b = ByteSize(v * mult)
	return nil
}

// Config is the configuration file of docs/design.md §8.
type Config struct {
	Events struct {
		TypePath string `yaml:"type_path"`
		IDPath   string `yaml:"id_path"`
		TimePath string `yaml:"time_path"`
	} `yaml:"events"`
	SQS struct {
		QueueURL    string   `yaml:"queue_url"`
		Pollers     int      `yaml:"pollers"`
		MaxInFlight int      `yaml:"max_in_flight"`
		WaitTime    Duration `yaml:"wait_time"`
	} `yaml:"sqs"`
	Mongo struct {
		URI      string `yaml:"uri"`
		Database string `yaml:"database"`
	} `yaml:"mongo"`
	S3 struct {
		Bucket    string `yaml:"bucket"`
		Prefix    string `yaml:"prefix"`
		PathStyle bool   `yaml:"path_style"`
	} `yaml:"s3"`
	Warehouse struct {
		Dialect         string   `yaml:"dialect"`
		DSN             string   `yaml:"dsn"`
		Schema          string   `yaml:"schema"`
		IAMRole         string   `yaml:"iam_role"`
		LoadInterval    Duration `yaml:"load_interval"`
		MaxFilesPerLoad int      `yaml:"max_files_per_load"`
		MergeTimeout    Duration `yaml:"merge_timeout"`
		// MaxConnections is the size of the process's warehouse connection
		// pool; the warehouse sees this many from every task at most.
		MaxConnections int `yaml:"max_connections"`
		// ReconcileInterval: how often a load also lists the days before
		// the watermark (warehouse.Config.ReconcileInterval).
		ReconcileInterval Duration `yaml:"reconcile_interval"`
		// LoadConcurrency: tables one load merges at once.
		LoadConcurrency int `yaml:"load_concurrency"`
	} `yaml:"warehouse"`
	Batch struct {
		MaxRows          int      `yaml:"max_rows"`
		MaxBytes         ByteSize `yaml:"max_bytes"`
		MaxAge           Duration `yaml:"max_age"`
		FlushConcurrency int      `yaml:"flush_concurrency"`
	} `yaml:"batch"`
	Backfill struct {
		Workers            int      `yaml:"workers"`
		BatchSize          int32    `yaml:"batch_size"`
		ReadPreference     string   `yaml:"read_preference"`
		CheckpointInterval Duration `yaml:"checkpoint_interval"`
		MaxPending         int      `yaml:"max_pending"`
		QueryTimeout       Duration `yaml:"query_timeout"`
	} `yaml:"backfill"`
	Deadletter struct {
		// ReplayKey signs the wharf.* attributes of a replayed message;
		// serve honours them only when signed with it. A secret: never
		// printed. At least 16 bytes; serve and replay must share it.
		ReplayKey string `yaml:"replay_key"`
	} `yaml:"deadletter"`
	Schema       string   `yaml:"schema"`
	DrainTimeout Duration `yaml:"drain_timeout"`
	Log          struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"` // json, console, or auto (console on a terminal)
	} `yaml:"log"`

	dir     string   // the config file's directory
	secrets []string // values never to print: passwords, AWS keys (see secrets.go)
}

// defaultConfig returns every default of docs/design.md §8.
func defaultConfig() *Config {
	c := &Config{}
	env := schema.DefaultEnvelope()
	c.Events.TypePath, c.Events.IDPath, c.Events.TimePath = env.TypePath, env.IDPath, env.TimePath
	ic := ingest.DefaultConfig()
	c.SQS.Pollers, c.SQS.MaxInFlight, c.SQS.WaitTime = ic.Pollers, ic.MaxInFlight, Duration(ic.WaitTime)
	c.Mongo.Database = "growth"
	c.S3.Prefix = "events/"
	wc := warehouse.DefaultConfig()
	c.Warehouse.Dialect, c.Warehouse.Schema, c.Warehouse.LoadInterval = string(wc.Dialect), wc.Schema, Duration(wc.LoadInterval)
	c.Warehouse.MaxFilesPerLoad, c.Warehouse.MergeTimeout = wc.MaxFilesPerLoad, Duration(wc.MergeTimeout)
	c.Warehouse.ReconcileInterval, c.Warehouse.LoadConcurrency = Duration(wc.ReconcileInterval), wc.LoadConcurrency
	c.Warehouse.MaxConnections = 8
	bc := batcher.DefaultConfig()
	c.Batch.MaxRows, c.Batch.MaxBytes, c.Batch.MaxAge, c.Batch.FlushConcurrency = bc.MaxRows, ByteSize(bc.MaxBytes), Duration(bc.MaxAge), bc.FlushConcurrency
	fc := backfill.DefaultConfig()
	c.Backfill.Workers, c.Backfill.BatchSize, c.Backfill.ReadPreference = fc.Workers, fc.BatchSize, fc.ReadPreference
	c.Backfill.CheckpointInterval, c.Backfill.MaxPending = Duration(fc.CheckpointInterval), fc.MaxPending
	c.Backfill.QueryTimeout = Duration(time.Hour)
	c.Schema = "tables.yaml"
	c.DrainTimeout = Duration(25 * time.Second)
	c.Log.Level, c.Log.Format = "info", "auto"
	return c
}

// configError is a bad configuration: exit code 2.
type configError struct{ msg string }

func (e *configError) Error() string { return "config: " + e.msg }

func badConfig(format string, args ...any) error {
	return &configError{fmt.Sprintf(format, args...)}
}

var yamlFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// loadConfig reads path (may be "" for defaults plus environment), applies
// the WHARF_SECTION_KEY overrides from env and validates the result.
func loadConfig(path string, env Env) (*Config, error) {
	c := defaultConfig()
	c.dir, _ = os.Getwd()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, badConfig("%v", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, errEOF(err)) {
			msg := yamlFieldRE.ReplaceAllString(err.Error(), "line $1: unknown field $2")
			return nil, badConfig("%s: %s", path, strings.TrimPrefix(msg, "yaml: "))
		}
		abs, _ := filepath.Abs(path)
		c.dir = filepath.Dir(abs)
	}
	known := map[string]bool{}
	if err := applyEnv(reflect.ValueOf(c).Elem(), reflect.ValueOf(defaultConfig()).Elem(), "WHARF", env, known); err != nil {
		return nil, err
	}
	for _, name := range env.Names() {
		if strings.HasPrefix(name, "WHARF_") && !known[name] && !otherWharfVariable(name) {
			return nil, badConfig("environment variable %s is not a configuration key (WHARF_SECTION_KEY, as the config file's section.key)", name)
		}
	}
	if c.Schema != "" && !filepath.IsAbs(c.Schema) {
		c.Schema = filepath.Join(c.dir, c.Schema)
	}
	c.secrets = secretValues(c, env)
	return c, nil
}

func errEOF(err error) error {
	if err != nil && err.Error() == "EOF" {
		return err
	}
	return errors.New("not EOF")
}

// otherWharfVariable reports a WHARF_ variable that is not a configuration
// key but is read elsewhere: the tests', the benchmarks' and the opt-in
// Redshift suite's.
func otherWharfVariable(name string) bool {
	switch name {
	case "WHARF_FAULT", "WHARF_REQUIRE_STACK", "WHARF_CHAOS", "WHARF_CHAOS_SEED", "WHARF_OUTAGE", "WHARF_OUTAGE_MODE",
		"WHARF_OUTAGE_LOGS", "WHARF_CHROMIUM", "WHARF_ARTIFACTS", "WHARF_STACK_DIR":
		return true
	}
	return strings.HasPrefix(name, "WHARF_REDSHIFT_") || strings.HasPrefix(name, "WHARF_BENCH_")
}

// applyEnv overrides each field from WHARF_SECTION_KEY, e.g.
// WHARF_SQS_QUEUE_URL or WHARF_DRAIN_TIMEOUT, and records each name in
// known. A variable set to "" clears the field to its default (dflt's
// field): WHARF_MONGO_URI= turns raw writes off whatever the file says.
func applyEnv(v, dflt reflect.Value, prefix string, env Env, known map[string]bool) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || !f.IsExported() {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := applyEnv(fv, dflt.Field(i), name, env, known); err != nil {
				return err
			}
			continue
		}
		known[name] = true
		val, set := env.Lookup(name)
		if !set {
			continue
		}
		if val == "" {
			fv.Set(dflt.Field(i))
			continue
		}
		field := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "WHARF_"), "_", "."))
		if fv.Kind() == reflect.String {
			fv.SetString(val)
			continue
		}
		var n yaml.Node
		n.Kind, n.Value = yaml.ScalarNode, val
		if err := n.Decode(fv.Addr().Interface()); err != nil {
			return badConfig("%s (from %s): %v", field, name, err)
		}
	}
	return nil
}

func (c *Config) envelope() schema.Envelope {
	return schema.Envelope{TypePath: c.Events.TypePath, IDPath: c.Events.IDPath, TimePath: c.Events.TimePath}
}

func (c *Config) batcherConfig() batcher.Config {
	bc := batcher.DefaultConfig()
	bc.Prefix = c.S3.Prefix
	bc.MaxRows, bc.MaxBytes, bc.MaxAge = c.Batch.MaxRows, int64(c.Batch.MaxBytes), time.Duration(c.Batch.MaxAge)
	bc.MaxInFlight, bc.FlushConcurrency = c.SQS.MaxInFlight, c.Batch.FlushConcurrency
	return bc
}

func (c *Config) ingestConfig() ingest.Config {
	return ingest.Config{QueueURL: c.SQS.QueueURL, Pollers: c.SQS.Pollers, MaxInFlight: c.SQS.MaxInFlight, WaitTime: time.Duration(c.SQS.WaitTime)}
}

func (c *Config) warehouseConfig() warehouse.Config {
	wc := warehouse.DefaultConfig()
	wc.Dialect, wc.Schema, wc.Prefix = schema.Dialect(c.Warehouse.Dialect), c.Warehouse.Schema, c.S3.Prefix
	wc.LoadInterval, wc.IAMRole = time.Duration(c.Warehouse.LoadInterval), c.Warehouse.IAMRole
	wc.MaxFilesPerLoad, wc.MergeTimeout = c.Warehouse.MaxFilesPerLoad, time.Duration(c.Warehouse.MergeTimeout)
	wc.ReconcileInterval, wc.LoadConcurrency = time.Duration(c.Warehouse.ReconcileInterval), c.Warehouse.LoadConcurrency
	return wc
}

// minReplayKey is the shortest deadletter.replay_key.
const minReplayKey = 16

// need says which parts a command uses, so that only those are validated.
type need struct{ sqs, s3, warehouse, mongo bool }

// validate checks the fields a command needs and names the first bad one.
func (c *Config) validate(n need) error {
	if err := c.envelope().Validate(); err != nil {
		return badConfig("%v", err)
	}
	if c.Schema == "" {
		return badConfig("schema: the path of the schema file is required")
	}
	if n.sqs {
		if err := c.ingestConfig().Validate(); err != nil {
			return badConfig("%v", err)
		}
		if err := c.batcherConfig().Validate(); err != nil {
			return badConfig("%v", err)
		}
	}
	if n.s3 {
		if c.S3.Bucket == "" {
			return badConfig("s3.bucket is required (or WHARF_S3_BUCKET)")
		}
		if c.S3.Prefix != "" && !strings.HasSuffix(c.S3.Prefix, "/") {
			return badConfig("s3.prefix must end with / (got %q)", c.S3.Prefix)
		}
	}
	if n.warehouse {
		if c.Warehouse.DSN == "" {
			return badConfig("warehouse.dsn is required (or WHARF_WAREHOUSE_DSN)")
		}
		if err := c.warehouseConfig().Validate(); err != nil {
			return badConfig("%v", err)
		}
		if c.Warehouse.MaxConnections < 1 || c.Warehouse.MaxConnections > 1000 {
			return badConfig("warehouse.max_connections must be 1..1000 (got %d)", c.Warehouse.MaxConnections)
		}
	}
	if n.mongo && c.Mongo.URI != "" && c.Mongo.Database == "" {
		return badConfig("mongo.database is required when mongo.uri is set")
	}
	if k := c.Deadletter.ReplayKey; k != "" && len(k) < minReplayKey {
		return badConfig("deadletter.replay_key must be at least %d bytes (it is %d)", minReplayKey, len(k))
	}
	if c.DrainTimeout <= 0 || time.Duration(c.DrainTimeout) > 115*time.Second {
		return badConfig("drain_timeout must be between 0s and 115s (ECS stops a task after at most 120s), not %s", time.Duration(c.DrainTimeout))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return badConfig("log.level must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		return badConfig("log.format must be auto, json or console, not %q", c.Log.Format)
	}
	return nil
}

var (
	// The password of a URL, up to the last @ before the path (an
	// unescaped @ may be part of it, as url.Parse reads it).
	userinfoRE = regexp.MustCompile(`(://[^:/@\s]*:)[^/\s]*@`)
	// key=value (a libpq keyword DSN, a query string) and "key":"value"
	// (JSON) forms, the value quoted or not.
	passwordRE = regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret_?access_?key|session_?token|security-token|sslpassword)"?\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|(?:[^\s&,;'"\\]|\\.)+)`)
)

// redact hides passwords in a DSN or URI, and secrets written as key=value
// or "key":"value", for logs and errors. Values known to be secret are hidden
// wherever they appear by scrub (secrets.go), which calls redact too.
func redact(s string) string {
	s = userinfoRE.ReplaceAllString(s, "${1}xxxxx@")
	return passwordRE.ReplaceAllString(s, "${1}xxxxx")
}

// setup parses a command's flags, loads the configuration that -c names
// and checks what the command needs of it.
func setup(fs *flag.FlagSet, cfgPath *string, args []string, env Env, n need) (*Config, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return nil, err
	}
	return c, c.validate(n)
}

// backfillConfig is a backfill of table as the config file says; workers,
// when not 0, overrides backfill.workers (--workers).
func (c *Config) backfillConfig(table string, workers int) backfill.Config {
	bc := backfill.DefaultConfig()
	bc.Table, bc.Prefix = table, c.S3.Prefix
	bc.Workers, bc.BatchSize, bc.ReadPreference = cmp.Or(workers, c.Backfill.Workers), c.Backfill.BatchSize, c.Backfill.ReadPreference
	bc.CheckpointInterval, bc.MaxPending, bc.DrainTimeout = time.Duration(c.Backfill.CheckpointInterval), c.Backfill.MaxPending, time.Duration(c.DrainTimeout)
	return bc
}
