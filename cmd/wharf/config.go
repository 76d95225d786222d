package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/internal/conf"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// Config is the configuration file of docs/design.md §8.
type Config struct {
	Events struct {
		TypePath string `yaml:"type_path"`
		IDPath   string `yaml:"id_path"`
		TimePath string `yaml:"time_path"`
	} `yaml:"events"`
	SQS struct {
		QueueURL    string        `yaml:"queue_url"`
		Pollers     int           `yaml:"pollers"`
		MaxInFlight int           `yaml:"max_in_flight"`
		WaitTime    conf.Duration `yaml:"wait_time"`
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
		Dialect         string        `yaml:"dialect"`
		DSN             string        `yaml:"dsn"`
		Schema          string        `yaml:"schema"`
		IAMRole         string        `yaml:"iam_role"`
		LoadInterval    conf.Duration `yaml:"load_interval"`
		MaxFilesPerLoad int           `yaml:"max_files_per_load"`
		MergeTimeout    conf.Duration `yaml:"merge_timeout"`
		// MaxConnections is the size of the process's warehouse connection
		// pool; the warehouse sees this many from every task at most.
		MaxConnections int `yaml:"max_connections"`
		// ReconcileInterval: how often a load also lists the days before
		// the watermark (warehouse.Config.ReconcileInterval).
		ReconcileInterval conf.Duration `yaml:"reconcile_interval"`
		// LoadConcurrency: tables one load merges at once.
		LoadConcurrency int `yaml:"load_concurrency"`
	} `yaml:"warehouse"`
	Batch struct {
		MaxRows          int           `yaml:"max_rows"`
		MaxBytes         conf.ByteSize `yaml:"max_bytes"`
		MaxAge           conf.Duration `yaml:"max_age"`
		FlushConcurrency int           `yaml:"flush_concurrency"`
	} `yaml:"batch"`
	Backfill struct {
		Workers            int           `yaml:"workers"`
		BatchSize          int32         `yaml:"batch_size"`
		ReadPreference     string        `yaml:"read_preference"`
		CheckpointInterval conf.Duration `yaml:"checkpoint_interval"`
		MaxPending         int           `yaml:"max_pending"`
		QueryTimeout       conf.Duration `yaml:"query_timeout"`
	} `yaml:"backfill"`
	Deadletter struct {
		// ReplayKey signs the wharf.* attributes of a replayed message;
		// serve honours them only when signed with it. A secret: never
		// printed. At least 16 bytes; serve and replay must share it.
		ReplayKey string `yaml:"replay_key"`
	} `yaml:"deadletter"`
	Schema       string        `yaml:"schema"`
	DrainTimeout conf.Duration `yaml:"drain_timeout"`
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
	c.SQS.Pollers, c.SQS.MaxInFlight, c.SQS.WaitTime = ic.Pollers, ic.MaxInFlight, conf.Duration(ic.WaitTime)
	c.Mongo.Database = "growth"
	c.S3.Prefix = "events/"
	wc := warehouse.DefaultConfig()
	c.Warehouse.Dialect, c.Warehouse.Schema, c.Warehouse.LoadInterval = string(wc.Dialect), wc.Schema, conf.Duration(wc.LoadInterval)
	c.Warehouse.MaxFilesPerLoad, c.Warehouse.MergeTimeout = wc.MaxFilesPerLoad, conf.Duration(wc.MergeTimeout)
	c.Warehouse.ReconcileInterval, c.Warehouse.LoadConcurrency = conf.Duration(wc.ReconcileInterval), wc.LoadConcurrency
	c.Warehouse.MaxConnections = 8
	bc := batcher.DefaultConfig()
	c.Batch.MaxRows, c.Batch.MaxBytes, c.Batch.MaxAge, c.Batch.FlushConcurrency = bc.MaxRows, conf.ByteSize(bc.MaxBytes), conf.Duration(bc.MaxAge), bc.FlushConcurrency
	fc := backfill.DefaultConfig()
	c.Backfill.Workers, c.Backfill.BatchSize, c.Backfill.ReadPreference = fc.Workers, fc.BatchSize, fc.ReadPreference
	c.Backfill.CheckpointInterval, c.Backfill.MaxPending = conf.Duration(fc.CheckpointInterval), fc.MaxPending
	c.Backfill.QueryTimeout = conf.Duration(time.Hour)
	c.Schema = "tables.yaml"
	c.DrainTimeout = conf.Duration(25 * time.Second)
	c.Log.Level, c.Log.Format = "info", "auto"
	return c
}

// configError is a bad configuration: exit code 2.
type configError struct{ msg string }

func (e *configError) Error() string { return "config: " + e.msg }

func badConfig(format string, args ...any) error {
	return &configError{fmt.Sprintf(format, args...)}
}

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
		if err := conf.Decode(data, c); err != nil {
			return nil, badConfig("%s: %v", path, err)
		}
		abs, _ := filepath.Abs(path)
		c.dir = filepath.Dir(abs)
	}
	known := map[string]bool{}
	if err := conf.ApplyEnv(c, defaultConfig(), "WHARF", env.Lookup, known); err != nil {
		return nil, badConfig("%v", err)
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

// setupSchema is setup, and the schema file the configuration names.
func setupSchema(fs *flag.FlagSet, cfgPath *string, args []string, env Env, n need) (*Config, *schema.Schema, error) {
	c, err := setup(fs, cfgPath, args, env, n)
	if err != nil {
		return nil, nil, err
	}
	sch, err := loadSchema(c)
	return c, sch, err
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
