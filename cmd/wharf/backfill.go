package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/internal/bars"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// backfillFlags are the flags of wharf backfill.
type backfillFlags struct {
	table, since, until, filter, shard, job, progress string
	overlap, every                                    time.Duration
	workers                                           int
	noLoad, scanOnly, rebuild                         bool
}

func (f *backfillFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.table, "table", "", "the table to fill from its Mongo collection (required)")
	fs.StringVar(&f.since, "since", "", `only events at or after this time (RFC 3339 or YYYY-MM-DD), or "warehouse": only documents received since the latest received_at already in the table, minus --overlap`)
	fs.StringVar(&f.until, "until", "", "only events before this time (RFC 3339 or YYYY-MM-DD)")
	fs.DurationVar(&f.overlap, "overlap", time.Hour, "with --since warehouse: start this long before the latest received_at loaded (the overlap is deduplicated)")
	fs.StringVar(&f.filter, "filter", "", `a MongoDB query in JSON, e.g. '{"user_id": {"$gt": 100}}'`)
	fs.StringVar(&f.shard, "shard", "0/1", "i/N: scan only the ranges of shard i of N (run N processes with the same --job)")
	fs.IntVar(&f.workers, "workers", 0, "ranges scanned at once (default backfill.workers, 2)")
	fs.StringVar(&f.job, "job", "", "job name; run again with the same name to resume (default TABLE-YYYYMMDDTHHMMSSZ)")
	fs.BoolVar(&f.noLoad, "no-load", false, "do not load the warehouse at the end (a running wharf serve will)")
	fs.StringVar(&f.progress, "progress", "auto", "auto (a bar on a terminal, else log lines), bar, log or none")
	fs.DurationVar(&f.every, "progress-interval", 5*time.Second, "time between progress log lines")
	fs.BoolVar(&f.scanOnly, "scan-only", false, "read the documents and discard them, writing nothing (a benchmark of the bare scan)")
	fs.BoolVar(&f.rebuild, "rebuild", false, "re-make the table and its child tables from every raw document into TABLE__rebuild with the schema file's current rules, then swap them in atomically (the old ones are kept as TABLE__replaced)")
}

// config is the backfill of table that the flags ask for.
func (f *backfillFlags) config(c *Config, table string) (backfill.Config, error) {
	switch {
	case f.rebuild && (f.since != "" || f.until != "" || f.filter != ""):
		return backfill.Config{}, usageError("--rebuild reads every document: it takes no --since, --until or --filter")
	case f.rebuild && (f.shard != "0/1" || f.noLoad || f.scanOnly):
		return backfill.Config{}, usageError("--rebuild runs in one process and loads: it takes no --shard, --no-load or --scan-only")
	}
	bc := c.backfillConfig(table, f.workers)
	bc.Filter, bc.ScanOnly = f.filter, f.scanOnly
	var err error
	if bc.Shard, bc.Shards, err = backfill.ParseShard(f.shard); err != nil {
		return bc, usageError("%v", err)
	}
	if f.since == "warehouse" {
		bc.SinceFrom = "warehouse"
	} else if bc.Since, err = whenFlag("--since", f.since); err != nil {
		return bc, err
	}
	if bc.Until, err = whenFlag("--until", f.until); err != nil {
		return bc, err
	}
	if bc.Job = f.job; bc.Job == "" {
		if bc.Shards > 1 {
			return bc, usageError("--job is required with --shard: every shard must name the same job")
		}
		bc.Job = table + "-" + time.Now().UTC().Format("20060102T150405Z")
		if f.rebuild {
			bc.Job = "rebuild-" + bc.Job
		}
	}
	if err := bc.Validate(); err != nil {
		return bc, usageError("%v", err)
	}
	return bc, nil
}

// cmdBackfill streams a table's Mongo history through the batcher to S3,
// then loads the warehouse, so the rows are queryable when it exits
// (backfill.Job).
func cmdBackfill(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("backfill", stderr)
	var f backfillFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	load := !f.scanOnly && (!f.noLoad || f.since == "warehouse")
	sch, t, err := c.backfillTable("backfill", f.table, need{s3: !f.scanOnly, warehouse: load, mongo: true})
	if err != nil {
		return err
	}
	bc, err := f.config(c, t.Name)
	if err != nil {
		return err
	}
	var reps []warehouse.Replacement
	if f.rebuild {
		data, err := os.ReadFile(c.Schema)
		if err != nil {
			return badConfig("schema: %v", err)
		}
		if sch, reps, err = backfill.RebuildSchema(data, t.Name); err != nil {
			return badConfig("--rebuild: %v", err)
		}
		bc.Table = t.Name + backfill.RebuildSuffix
	}
	out, err := display(c, f.progress, stderr)
	if err != nil {
		return err
	}
	defer out.Log.Sync()
	softMemoryLimit(c, env)
	j, closeJob, err := c.openJob(ctx, env, out.Log, sch, bc, !f.scanOnly, load)
	defer closeJob()
	if err != nil {
		return err
	}
	j.Overlap, j.Rebuild, j.SkipLoad = f.overlap, reps, f.noLoad
	out.Show(j, f.every)
	if err := j.Prepare(ctx); err != nil {
		return backfillErr(err)
	}
	if !f.scanOnly {
		fmt.Fprintf(stderr, "backfill job %s (run again with --job %s to resume)\n", bc.Job, bc.Job)
	}
	return backfillErr(j.Fill(ctx, stdout))
}

// cmdAudit compares, hour by hour, the documents in Mongo with the rows in
// the warehouse for one table, and with --repair backfills exactly the hours
// where the warehouse has fewer (backfill.Job.Audit).
func cmdAudit(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("audit", stderr)
	table := fs.String("table", "", "the table to audit (required)")
	since := fs.String("since", "", "start of the event time range (RFC 3339 or YYYY-MM-DD; required)")
	until := fs.String("until", "", "end of the range, exclusive (default: the start of the current hour)")
	repair := fs.Bool("repair", false, "backfill the hours where the warehouse has fewer rows than Mongo has documents, then load and audit again")
	workers := fs.Int("workers", 0, "with --repair: ranges scanned at once (default backfill.workers)")
	progress := fs.String("progress", "auto", "with --repair: auto, bar, log or none")
	asJSON := fs.Bool("json", false, "print the differing hours as JSON lines")
	c, err := setup(fs, cfgPath, args, env, need{})
	if err != nil {
		return err
	}
	sch, t, err := c.backfillTable("audit", *table, need{s3: true, warehouse: true, mongo: true})
	if err != nil {
		return err
	}
	from, to, err := auditRange(*since, *until)
	if err != nil {
		return err
	}
	out, err := display(c, *progress, stderr)
	if err != nil {
		return err
	}
	defer out.Log.Sync()
	if *repair {
		softMemoryLimit(c, env)
	}
	j, closeJob, err := c.openJob(ctx, env, out.Log, sch, c.backfillConfig(t.Name, *workers), true, true)
	defer closeJob()
	if err != nil {
		return err
	}
	if err := j.Prepare(ctx); err != nil {
		return err
	}
	a, err := j.Audit(ctx, from, to)
	if err != nil {
		return err
	}
	a.Write(stdout, *asJSON)
	if !*repair {
		return nil
	}
	out.Show(j, 5*time.Second)
	return backfillErr(j.Repair(ctx, a, stdout, *asJSON))
}

// auditRange reads --since and --until, to whole hours.
func auditRange(since, until string) (from, to time.Time, err error) {
	if since == "" {
		return from, to, usageError("--since is required")
	}
	if from, err = whenFlag("--since", since); err != nil {
		return from, to, err
	}
	from, to = from.Truncate(time.Hour), time.Now().UTC().Truncate(time.Hour)
	if until != "" {
		if to, err = whenFlag("--until", until); err != nil {
			return from, to, err
		}
	}
	if !to.After(from) {
		return from, to, usageError("--until %s is not after --since %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return from, to, nil
}

// backfillTable checks the config a backfill or an audit (what) needs, and
// returns the schema and the parent table it names.
func (c *Config) backfillTable(what, table string, n need) (*schema.Schema, *schema.Table, error) {
	if err := c.validate(n); err != nil {
		return nil, nil, err
	}
	if c.Mongo.URI == "" {
		return nil, nil, badConfig("mongo.uri is required for %s (or WHARF_MONGO_URI)", what)
	}
	if err := c.batcherConfig().Validate(); err != nil {
		return nil, nil, badConfig("%v", err)
	}
	if c.Backfill.QueryTimeout <= 0 {
		return nil, nil, badConfig("backfill.query_timeout must be positive")
	}
	sch, err := loadSchema(c)
	if err != nil {
		return nil, nil, err
	}
	t := sch.Table(table)
	switch {
	case table == "":
		return nil, nil, usageError("--table is required")
	case t == nil:
		return nil, nil, usageError("--table: no table %q in %s", table, c.Schema)
	case t.IsChild():
		return nil, nil, usageError("--table %s is a child table: %s its parent, %s", t.Name, what, t.Parent.Name)
	}
	return sch, t, nil
}

// openJob connects what a backfill job of bc reads and writes: Mongo, with
// store S3, with load the warehouse. release lets them go, also after an error.
func (c *Config) openJob(ctx context.Context, env Env, log *zap.Logger, sch *schema.Schema, bc backfill.Config, store, load bool) (j *backfill.Job, release func(), err error) {
	var closers []func()
	release = func() {
		for _, f := range slices.Backward(closers) {
			f()
		}
	}
	// Background work outlives the signal context: the drain needs it.
	bg := context.WithoutCancel(ctx)
	// backfill.query_timeout per operation: the first batch of a sorted
	// range can take minutes on a server that sorts in memory (FerretDB),
	// far more than the 30 s that bounds serve's writes.
	mc, err := connectMongo(bg, c, time.Duration(c.Backfill.QueryTimeout))
	if err != nil {
		return nil, release, err
	}
	closers = append(closers, func() { mc.Disconnect(context.Background()) })
	j = &backfill.Job{Config: bc, Schema: sch, Envelope: c.envelope(), DB: mc.Database(c.Mongo.Database), Batcher: c.batcherConfig(), Log: log}
	if !store {
		return j, release, nil
	}
	if !load {
		ac, err := awsConfig(bg, env)
		if err != nil {
			return nil, release, err
		}
		j.Store = newS3(ac, c)
		return j, release, nil
	}
	loader, s3, closeLoader, err := c.openLoader(bg, env, log, sch)
	closers = append(closers, closeLoader)
	if err != nil {
		return nil, release, err
	}
	j.Store, j.Warehouse = s3, loader
	return j, release, nil
}

// backfillErr makes the backfill errors that mean a bad command line (a
// --job started with other settings, a rebuild swapped in already) exit 2.
func backfillErr(err error) error {
	if errors.Is(err, backfill.ErrJobMismatch) || errors.Is(err, backfill.ErrSwapped) {
		return &exitError{2, err}
	}
	return err
}

// softMemoryLimit sets the Go heap's soft limit to the batcher's byte cap
// plus room for the rest (cursor batches, Parquet encoding, the trackers),
// unless GOMEMLIMIT sets one: a backfill keeps its buffers full for hours,
// and without a limit the heap may grow to twice what is live before a
// collection. (With the defaults, 176 MiB: 2,000,000 documents peaked at
// 250 MiB of RSS with 96 MiB of room, the cap being 256.)
func softMemoryLimit(c *Config, env Env) {
	if env.Get("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(c.Batch.MaxBytes) + 48<<20)
	}
}

// display resolves --progress for stderr, and the log, whose lines move
// above the progress bars while they are drawn.
func display(c *Config, progress string, stderr io.Writer) (*bars.Display, error) {
	d, err := bars.NewDisplay(progress, stderr)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if d.Terminal && c.Log.Format == "auto" {
		c.Log.Format = "console"
	}
	d.Log = newLogger(c, d.Logs)
	return d, nil
}

// whenFlag reads flag name's value v (backfill.ParseTime); "" is the zero
// time.
func whenFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := backfill.ParseTime(v)
	if err != nil {
		return t, usageError("%s: %v", name, err)
	}
	return t, nil
}
