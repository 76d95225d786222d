package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/term"

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
	if bc.Shard, bc.Shards, err = parseShard(f.shard); err != nil {
		return bc, err
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
	out, err := progressLogger(c, f.progress, stderr)
	if err != nil {
		return err
	}
	defer out.log.Sync()
	softMemoryLimit(c, env)
	j, closeJob, err := c.openJob(ctx, env, out.log, sch, bc, !f.scanOnly, load)
	defer closeJob()
	if err != nil {
		return err
	}
	j.Overlap, j.Rebuild = f.overlap, reps
	out.show(j, f.every)
	if err := j.Prepare(ctx); err != nil {
		return backfillErr(err)
	}
	if !f.scanOnly {
		fmt.Fprintf(stderr, "backfill job %s (run again with --job %s to resume)\n", bc.Job, bc.Job)
	}
	sum, err := j.Run(ctx)
	printSummary(stdout, bc.Table, sum, f.scanOnly)
	if err != nil || f.scanOnly || f.noLoad {
		return backfillErr(err)
	}
	if err := loadAndPrint(ctx, j, stdout); err != nil || !f.rebuild {
		return err
	}
	if err := j.Swap(ctx, sum); err != nil {
		return err
	}
	for _, r := range reps {
		fmt.Fprintf(stdout, "swapped %s: it now holds the rebuilt rows; the old table is kept as %s\n", r.Target, r.Target+warehouse.ReplacedSuffix)
	}
	return nil
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
	out, err := progressLogger(c, *progress, stderr)
	if err != nil {
		return err
	}
	defer out.log.Sync()
	if *repair {
		softMemoryLimit(c, env)
	}
	j, closeJob, err := c.openJob(ctx, env, out.log, sch, c.backfillConfig(t.Name, *workers), true, true)
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
	printAudit(stdout, *asJSON, t.Name, from, to, a)
	if !*repair {
		return nil
	}
	if j.Config.Windows = backfill.RepairWindows(a.Diffs); len(j.Config.Windows) == 0 {
		if len(a.Diffs) > 0 {
			fmt.Fprintln(stdout, "nothing to repair: the warehouse has no fewer rows than Mongo has documents in any hour")
		}
		return nil
	}
	j.Config.Job = "repair-" + t.Name + "-" + time.Now().UTC().Format("20060102T150405Z")
	out.show(j, 5*time.Second)
	out.log.Info("repairing", zap.String("table", t.Name), zap.Int("windows", len(j.Config.Windows)), zap.Int("hours", len(a.Diffs)))
	sum, err := j.Run(ctx)
	printSummary(stdout, t.Name, sum, false)
	if err != nil {
		return backfillErr(err)
	}
	if err := loadAndPrint(ctx, j, stdout); err != nil {
		return err
	}
	if a, err = j.Audit(ctx, from, to); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "after the repair:")
	printAudit(stdout, *asJSON, t.Name, from, to, a)
	return nil
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
	ac, err := awsConfig(bg, env)
	if err != nil {
		return nil, release, err
	}
	s3 := newS3(ac, c)
	if j.Store = s3; !load {
		return j, release, nil
	}
	pool, err := newPool(bg, c)
	if err != nil {
		return nil, release, err
	}
	closers = append(closers, pool.Close)
	loader, err := warehouse.New(c.warehouseConfig(), pool, s3, sch, log, nil)
	if err != nil {
		return nil, release, badConfig("%v", err)
	}
	j.Warehouse = loader
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

// loadAndPrint loads the job's tables now, so that its rows are queryable
// when the command returns, and prints what each took.
func loadAndPrint(ctx context.Context, j *backfill.Job, stdout io.Writer) error {
	start := time.Now()
	res, err := j.Load(ctx)
	for _, name := range j.Tables() {
		r := res.Tables[name]
		fmt.Fprintf(stdout, "loaded %-28s files %5d  rows %9d  duplicates %7d\n", name, r.Files, r.Rows, r.Duplicates)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the rows are in the warehouse (load took %s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// printSummary writes what the run did.
func printSummary(w io.Writer, table string, s backfill.Summary, scanOnly bool) {
	secs := max(s.Elapsed.Seconds(), 0.001)
	what := "backfill"
	if scanOnly {
		what = "scan"
	}
	fmt.Fprintf(w, "%s of %s, job %s: %d of %d ranges done\n", what, table, s.Job, s.RangesDone, s.Ranges)
	fmt.Fprintf(w, "  documents read  %d (%.0f/s)\n", s.Read, float64(s.Read)/secs)
	if !scanOnly {
		fmt.Fprintf(w, "  rows            %s\n", counts(s.Rows))
		fmt.Fprintf(w, "  dead letters    %s\n", counts(s.DeadLetters))
		fmt.Fprintf(w, "  skipped         %s\n", counts(s.Skipped))
	}
	fmt.Fprintf(w, "  elapsed         %s\n", s.Elapsed.Round(time.Millisecond))
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// printAudit writes the hours that differ.
func printAudit(w io.Writer, asJSON bool, table string, from, to time.Time, a backfill.Audit) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range a.Diffs {
			enc.Encode(d)
		}
		return
	}
	fmt.Fprintf(w, "audit of %s from %s to %s: Mongo %d documents, warehouse %d rows (Mongo counted by %s)\n",
		table, from.Format(time.RFC3339), to.Format(time.RFC3339), a.Mongo, a.Warehouse, a.Method)
	if len(a.Diffs) == 0 {
		fmt.Fprintln(w, "  every hour matches")
		return
	}
	fmt.Fprintf(w, "  %d hours differ:\n  %-20s %9s %9s %9s\n", len(a.Diffs), "hour (UTC)", "mongo", "warehouse", "missing")
	for i, d := range a.Diffs {
		if i == 50 && len(a.Diffs) > 60 {
			fmt.Fprintf(w, "  … and %d more\n", len(a.Diffs)-50)
			break
		}
		fmt.Fprintf(w, "  %-20s %9d %9d %9d\n", d.Hour.Format("2006-01-02T15:04Z"), d.Mongo, d.Warehouse, d.Mongo-d.Warehouse)
	}
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

// progressOut is where a backfill's progress and log lines go.
type progressOut struct {
	mode   string // bar, log or none
	logs   *bars.LogWriter
	stderr io.Writer
	log    *zap.Logger
}

// progressLogger resolves --progress (auto: a bar on a terminal, log lines
// otherwise) and the logger, whose output can move above the bars.
func progressLogger(c *Config, progress string, stderr io.Writer) (progressOut, error) {
	isTerm := false
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		isTerm = true
	}
	out := progressOut{mode: progress, logs: bars.NewLogWriter(stderr), stderr: stderr}
	switch progress {
	case "auto":
		if out.mode = "log"; isTerm {
			out.mode = "bar"
		}
	case "bar", "log", "none":
	default:
		return out, usageError("--progress must be auto, bar, log or none, not %q", progress)
	}
	if isTerm && c.Log.Format == "auto" {
		c.Log.Format = "console"
	}
	out.log = newLogger(c, out.logs)
	return out, nil
}

// show makes j display its progress as --progress says, every interval
// for log lines.
func (p progressOut) show(j *backfill.Job, every time.Duration) {
	j.Show = func(get func() backfill.Progress) func(bool) {
		return bars.Show(p.mode, get, p.stderr, p.logs, backfill.ProgressLog(p.log, j.Config), every)
	}
}

// parseShard reads "i/N".
func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, usageError("--shard %q: want i/N with 0 ≤ i < N, such as 0/4", s)
	}
	return i, n, nil
}

// whenFlag reads flag name's value v as parseWhen does; "" is the zero time.
func whenFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := parseWhen(v)
	if err != nil {
		return t, usageError("%s: %v", name, err)
	}
	return t, nil
}

// parseWhen reads an RFC 3339 time, a zone-less date and time (UTC), or a
// date (midnight UTC).
func parseWhen(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time or a YYYY-MM-DD date", s)
}
