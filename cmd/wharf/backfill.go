package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/bars"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// cmdBackfill streams a table's Mongo history through the batcher to S3,
// then loads the warehouse, so the rows are queryable when it exits.
func cmdBackfill(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("backfill", stderr)
	table := fs.String("table", "", "the table to fill from its Mongo collection (required)")
	since := fs.String("since", "", `only events at or after this time (RFC 3339 or YYYY-MM-DD), or "warehouse": only documents received since the latest received_at already in the table, minus --overlap`)
	until := fs.String("until", "", "only events before this time (RFC 3339 or YYYY-MM-DD)")
	overlap := fs.Duration("overlap", time.Hour, "with --since warehouse: start this long before the latest received_at loaded (the overlap is deduplicated)")
	filter := fs.String("filter", "", `a MongoDB query in JSON, e.g. '{"user_id": {"$gt": 100}}'`)
	shard := fs.String("shard", "0/1", "i/N: scan only the ranges of shard i of N (run N processes with the same --job)")
	workers := fs.Int("workers", 0, "ranges scanned at once (default backfill.workers, 2)")
	job := fs.String("job", "", "job name; run again with the same name to resume (default TABLE-YYYYMMDDTHHMMSSZ)")
	noLoad := fs.Bool("no-load", false, "do not load the warehouse at the end (a running wharf serve will)")
	progress := fs.String("progress", "auto", "auto (a bar on a terminal, else log lines), bar, log or none")
	every := fs.Duration("progress-interval", 5*time.Second, "time between progress log lines")
	scanOnly := fs.Bool("scan-only", false, "read the documents and discard them, writing nothing (a benchmark of the bare scan)")
	rebuild := fs.Bool("rebuild", false, "re-make the table and its child tables from every raw document into TABLE__rebuild with the schema file's current rules, then swap them in atomically (the old ones are kept as TABLE__replaced)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	needWarehouse := !*scanOnly && (!*noLoad || *since == "warehouse")
	if err := c.validate(need{s3: !*scanOnly, warehouse: needWarehouse, mongo: true}); err != nil {
		return err
	}
	if c.Mongo.URI == "" {
		return badConfig("mongo.uri is required for backfill (or WHARF_MONGO_URI)")
	}
	if err := c.batcherConfig().Validate(); err != nil {
		return badConfig("%v", err)
	}
	if c.Backfill.QueryTimeout <= 0 {
		return badConfig("backfill.query_timeout must be positive")
	}
	sch, err := loadSchema(c)
	if err != nil {
		return err
	}
	if *table == "" {
		return usageError("--table is required")
	}
	t := sch.Table(*table)
	if t == nil {
		return usageError("--table: no table %q in %s", *table, c.Schema)
	}
	if t.IsChild() {
		return usageError("--table %s is a child table: backfill its parent, %s", t.Name, t.Parent.Name)
	}
	// A rebuild fills TABLE__rebuild (and its children's) from a schema
	// holding only those tables, then swaps them in.
	target, runSch, reps := t, sch, []warehouse.Replacement(nil)
	if *rebuild {
		switch {
		case *since != "" || *until != "" || *filter != "":
			return usageError("--rebuild reads every document: it takes no --since, --until or --filter")
		case *shard != "0/1" || *noLoad || *scanOnly:
			return usageError("--rebuild runs in one process and loads: it takes no --shard, --no-load or --scan-only")
		}
		if t, runSch, reps, err = rebuildSchema(c.Schema, *table); err != nil {
			return err
		}
	}
	bc := backfill.DefaultConfig()
	bc.Table, bc.Filter, bc.Prefix, bc.ScanOnly = t.Name, *filter, c.S3.Prefix, *scanOnly
	bc.Workers, bc.BatchSize, bc.ReadPreference = c.Backfill.Workers, c.Backfill.BatchSize, c.Backfill.ReadPreference
	bc.CheckpointInterval, bc.MaxPending, bc.DrainTimeout = time.Duration(c.Backfill.CheckpointInterval), c.Backfill.MaxPending, time.Duration(c.DrainTimeout)
	if *workers != 0 {
		bc.Workers = *workers
	}
	if bc.Shard, bc.Shards, err = parseShard(*shard); err != nil {
		return err
	}
	if *since != "" && *since != "warehouse" {
		if bc.Since, err = parseWhen(*since); err != nil {
			return usageError("--since: %v", err)
		}
	}
	if *until != "" {
		if bc.Until, err = parseWhen(*until); err != nil {
			return usageError("--until: %v", err)
		}
	}
	bc.Job = *job
	if bc.Job == "" {
		if bc.Shards > 1 {
			return usageError("--job is required with --shard: every shard must name the same job")
		}
		bc.Job = *table + "-" + time.Now().UTC().Format("20060102T150405Z")
		if *rebuild {
			bc.Job = "rebuild-" + bc.Job
		}
	}
	if *since == "warehouse" {
		bc.SinceFrom = "warehouse"
	}
	if err := bc.Validate(); err != nil {
		return usageError("%v", err)
	}
	mode, logs, log, err := progressLogger(c, *progress, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	softMemoryLimit(c, env)

	// Background work outlives the signal context: the drain needs it.
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	mc, err := newBackfillMongo(bg, c)
	if err != nil {
		return err
	}
	defer mc.Disconnect(context.Background())
	db := mc.Database(c.Mongo.Database)

	var (
		loader *warehouse.Loader
		s3     *s3store.Store
	)
	if !*scanOnly {
		ac, err := awsConfig(bg, env)
		if err != nil {
			return err
		}
		s3 = newS3(ac, c)
		if needWarehouse {
			pool, err := newPool(bg, c)
			if err != nil {
				return err
			}
			defer pool.Close()
			if loader, err = warehouse.New(c.warehouseConfig(), pool, s3, runSch, log, nil); err != nil {
				return badConfig("%v", err)
			}
			if err := loader.Apply(ctx); err != nil {
				return err
			}
		}
		if *since == "warehouse" {
			latest, ok, err := loader.MaxReceivedAt(ctx, t.Name)
			if err != nil {
				return err
			}
			if ok {
				// A new job is planned with this bound; a resumed one keeps
				// the bound in its plan (the backfill adopts it).
				bc.ReceivedSince = latest.Add(-*overlap)
				log.Info("--since warehouse (a resumed job keeps the bound it was planned with)", zap.String("table", t.Name),
					zap.Time("latest_received_at", latest), zap.Time("received_since", bc.ReceivedSince))
			} else {
				log.Info("--since warehouse: the table is empty; backfilling everything", zap.String("table", t.Name))
			}
		}
	}
	swapped := backfill.Dir(c.S3.Prefix, bc.Job) + "swapped.json"
	if *rebuild {
		if _, err := s3.Get(ctx, swapped); err == nil {
			return usageError("--job %s: this rebuild was already swapped in; start another with a new --job", bc.Job)
		} else if !errors.Is(err, s3store.ErrNotFound) {
			return err
		}
	}
	sum, runErr := runBackfill(ctx, bg, c, runSch, bc, db, s3, log, logs, stderr, mode, *every)
	printSummary(stdout, t, sum, *scanOnly)
	if runErr != nil {
		return runErr
	}
	if *scanOnly || *noLoad {
		return nil
	}
	if err := loadAfterBackfill(ctx, loader, t, stdout); err != nil {
		return err
	}
	if !*rebuild {
		return nil
	}
	if !sum.Complete() {
		return fmt.Errorf("rebuild of %s: %d of %d ranges done; run again with --job %s", target.Name, sum.RangesDone, sum.Ranges, bc.Job)
	}
	if err := loader.ReplaceTables(ctx, reps); err != nil {
		return fmt.Errorf("rebuild of %s: swap: %w (the rebuilt rows stay in %s; run again with --job %s to retry)", target.Name, err, t.Name, bc.Job)
	}
	marker := []byte(fmt.Sprintf(`{"table":%q,"swapped_at":%q}`, target.Name, time.Now().UTC().Format(time.RFC3339)))
	if err := s3.Put(ctx, swapped, bytes.NewReader(marker), int64(len(marker))); err != nil {
		log.Warn("rebuild swapped in, but its marker was not written", zap.Error(err))
	}
	for _, r := range reps {
		fmt.Fprintf(stdout, "swapped %s: it now holds the rebuilt rows; the old table is kept as %s\n", r.Target, r.Target+warehouse.ReplacedSuffix)
	}
	return nil
}

// rebuildSchema returns a schema holding only table name and its children,
// renamed NAME__rebuild, read from the schema file as it is now, with the
// replacements that swap them in.
func rebuildSchema(path, name string) (*schema.Table, *schema.Schema, []warehouse.Replacement, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, badConfig("schema: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil, nil, nil, badConfig("schema %s: %v", path, err)
	}
	tables := mappingValue(doc.Content[0], "tables")
	if tables == nil || tables.Kind != yaml.SequenceNode {
		return nil, nil, nil, badConfig("schema %s: no tables", path)
	}
	var reps []warehouse.Replacement
	rename := func(n *yaml.Node, child bool) {
		if v := mappingValue(n, "name"); v != nil {
			reps = append(reps, warehouse.Replacement{Target: v.Value, Rebuilt: v.Value + "__rebuild", Child: child})
			v.Value += "__rebuild"
		}
	}
	for _, tn := range tables.Content {
		if v := mappingValue(tn, "name"); v == nil || v.Value != name {
			continue
		}
		rename(tn, false)
		if ch := mappingValue(tn, "children"); ch != nil {
			for _, cn := range ch.Content {
				rename(cn, true)
			}
		}
		out, err := yaml.Marshal(map[string]any{"tables": []*yaml.Node{tn}})
		if err != nil {
			return nil, nil, nil, err
		}
		sch, err := schema.Parse(out)
		if err != nil {
			return nil, nil, nil, badConfig("--rebuild: %v", err)
		}
		return sch.Table(name + "__rebuild"), sch, reps, nil
	}
	return nil, nil, nil, usageError("--rebuild: no parent table %q in %s", name, path)
}

// mappingValue returns the value of key in a YAML mapping node, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// manualFlush is the batcher as backfill.Sink: a backfill flushes it with
// reason manual.
type manualFlush struct{ *batcher.Batcher }

func (m manualFlush) Flush(ctx context.Context) error {
	return m.Batcher.Flush(ctx, batcher.ReasonManual)
}

// runBackfill runs one backfill job with its batcher, dead-letter writer and
// progress display, and returns once its rows are in S3 (or it stopped).
// With bc.ScanOnly, s3 may be nil.
func runBackfill(ctx, bg context.Context, c *Config, sch *schema.Schema, bc backfill.Config, db *mongo.Database, s3 *s3store.Store,
	log *zap.Logger, logs *bars.LogWriter, stderr io.Writer, mode string, every time.Duration) (backfill.Summary, error) {
	var (
		sink  backfill.Sink
		dls   backfill.DeadLetters
		store backfill.ObjectStore
		dl    *deadletter.Writer
	)
	if !bc.ScanOnly {
		bat, err := batcher.New(c.batcherConfig(), s3, log, nil)
		if err != nil {
			return backfill.Summary{}, badConfig("%v", err)
		}
		go bat.Run(bg)      // until Close
		defer bat.Close(bg) // waits for Run to return
		dl = deadletter.NewWriter(deadletter.Config{Prefix: c.S3.Prefix}, s3, log, nil)
		go dl.Run(bg) // until dl.Close below
		sink, dls, store = manualFlush{bat}, dl, s3
	}
	bf, err := backfill.New(bc, sch, c.envelope(), db, sink, dls, store, log)
	if err != nil {
		return backfill.Summary{}, usageError("%v", err)
	}
	if !bc.ScanOnly {
		fmt.Fprintf(stderr, "backfill job %s (run again with --job %s to resume)\n", bc.Job, bc.Job)
	}
	stopProgress := bars.Show(mode, bf.Progress, stderr, logs, backfill.ProgressLog(log, bc), every)
	sum, runErr := bf.Run(ctx)
	stopProgress(runErr == nil)
	if dl != nil {
		dctx, cancel := context.WithTimeout(bg, time.Duration(c.DrainTimeout))
		if err := dl.Close(dctx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("dead letters: %w", err))
		}
		cancel()
	}
	switch {
	case runErr == nil:
	case errors.Is(runErr, backfill.ErrJobMismatch):
		runErr = usageError("%v", runErr)
	case !bc.ScanOnly:
		runErr = fmt.Errorf("backfill %s stopped (progress is saved: run again with --job %s to resume): %w", bc.Job, bc.Job, runErr)
	}
	return sum, runErr
}

// loadAfterBackfill loads the table and its children now, so that the rows
// are queryable when the command returns.
func loadAfterBackfill(ctx context.Context, loader *warehouse.Loader, t *schema.Table, stdout io.Writer) error {
	start := time.Now()
	names := []string{t.Name}
	for _, ch := range t.Children {
		names = append(names, ch.Name)
	}
	res, err := loader.Load(ctx, names...)
	for _, name := range names {
		r := res.Tables[name]
		fmt.Fprintf(stdout, "loaded %-28s files %5d  rows %9d  duplicates %7d\n", name, r.Files, r.Rows, r.Duplicates)
	}
	if err != nil {
		return fmt.Errorf("load after backfill (the files stay pending for the next load): %w", err)
	}
	fmt.Fprintf(stdout, "the rows are in the warehouse (load took %s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// printSummary writes what the run did.
func printSummary(w io.Writer, t *schema.Table, s backfill.Summary, scanOnly bool) {
	secs := max(s.Elapsed.Seconds(), 0.001)
	what := "backfill"
	if scanOnly {
		what = "scan"
	}
	fmt.Fprintf(w, "%s of %s, job %s: %d of %d ranges done\n", what, t.Name, s.Job, s.RangesDone, s.Ranges)
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

// newBackfillMongo connects like newMongo but with backfill.query_timeout
// per operation: the first batch of a sorted range can take minutes on a
// server that sorts in memory (FerretDB), far more than the 30 s that bounds
// serve's writes.
func newBackfillMongo(ctx context.Context, c *Config) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(c.Mongo.URI).SetTimeout(time.Duration(c.Backfill.QueryTimeout)))
	if err != nil {
		return nil, badConfig("mongo.uri: %s", redact(err.Error()))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		return nil, fmt.Errorf("mongo: %s", redact(err.Error()))
	}
	return client, nil
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

// progressLogger resolves --progress (auto: a bar on a terminal, log lines
// otherwise) and returns a logger whose output can move above the bars.
func progressLogger(c *Config, progress string, stderr io.Writer) (string, *bars.LogWriter, *zap.Logger, error) {
	isTerm := false
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		isTerm = true
	}
	mode := progress
	switch mode {
	case "auto":
		mode = "log"
		if isTerm {
			mode = "bar"
		}
	case "bar", "log", "none":
	default:
		return "", nil, nil, usageError("--progress must be auto, bar, log or none, not %q", mode)
	}
	if isTerm && c.Log.Format == "auto" {
		c.Log.Format = "console"
	}
	logs := bars.NewLogWriter(stderr)
	return mode, logs, newLogger(c, logs), nil
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
