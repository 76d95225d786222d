package backfill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// Warehouse is what a job needs of the warehouse loader.
type Warehouse interface {
	Apply(ctx context.Context) error
	MaxReceivedAt(ctx context.Context, table string) (time.Time, bool, error)
	HourlyCounts(ctx context.Context, table string, since, until time.Time) (map[time.Time]int64, error)
	Load(ctx context.Context, tables ...string) (warehouse.Result, error)
	ReplaceTables(ctx context.Context, reps []warehouse.Replacement) error
}

var _ Warehouse = (*warehouse.Loader)(nil)

// ErrSwapped is returned when a rebuild's job was swapped in already.
var ErrSwapped = errors.New("rebuild already swapped in")

// Job is what `wharf backfill` and `wharf audit --repair` run: a backfill
// through its own batcher and dead-letter writer to S3, with the warehouse
// it reads bounds from, loads after, and (for a rebuild) swaps tables in.
type Job struct {
	Config   Config
	Schema   *schema.Schema // the tables it fills (a rebuild's: RebuildSchema)
	Envelope schema.Envelope
	DB       *mongo.Database
	Store    ObjectStore    // S3; nil with Config.ScanOnly
	Batcher  batcher.Config // of the batcher the rows go through
	// Warehouse is the loader; nil when the job neither loads nor reads
	// --since warehouse.
	Warehouse Warehouse
	// Overlap: with Config.SinceFrom "warehouse", the job starts this long
	// before the latest received_at loaded (the overlap is deduplicated).
	Overlap time.Duration
	// Rebuild swaps these in when the job is done (RebuildSchema).
	Rebuild []warehouse.Replacement
	// SkipLoad: Fill does not load after the run (a running serve will).
	SkipLoad bool
	Log      *zap.Logger
	// Show displays the run's progress until the stop it returns is called;
	// nil shows nothing.
	Show func(get func() Progress) (stop func(ok bool))
}

// Prepare readies the warehouse (creating what the schema lacks), reads the
// --since warehouse bound, and refuses a rebuild that was swapped in
// already (ErrSwapped).
func (j *Job) Prepare(ctx context.Context) error {
	if j.Rebuild != nil {
		if _, err := j.Store.Get(ctx, j.swappedKey()); err == nil {
			return fmt.Errorf("--job %s: %w; start another with a new --job", j.Config.Job, ErrSwapped)
		} else if !errors.Is(err, s3store.ErrNotFound) {
			return err
		}
	}
	if j.Warehouse == nil {
		return nil
	}
	if err := j.Warehouse.Apply(ctx); err != nil {
		return err
	}
	if j.Config.SinceFrom == "warehouse" {
		latest, ok, err := j.Warehouse.MaxReceivedAt(ctx, j.Config.Table)
		if err != nil {
			return err
		}
		if ok {
			// A new job is planned with this bound; a resumed one keeps the
			// bound in its plan (the backfill adopts it).
			j.Config.ReceivedSince = latest.Add(-j.Overlap)
			j.Log.Info("--since warehouse (a resumed job keeps the bound it was planned with)", zap.String("table", j.Config.Table),
				zap.Time("latest_received_at", latest), zap.Time("received_since", j.Config.ReceivedSince))
		} else {
			j.Log.Info("--since warehouse: the table is empty; backfilling everything", zap.String("table", j.Config.Table))
		}
	}
	return nil
}

// swappedKey is the marker a rebuild writes once swapped in.
func (j *Job) swappedKey() string { return Dir(j.Config.Prefix, j.Config.Job) + "swapped.json" }

// Run runs the backfill and returns once its rows are in S3 (or it stopped:
// its progress is saved, and running the job again resumes it).
func (j *Job) Run(ctx context.Context) (Summary, error) {
	var (
		sink  Sink
		dls   DeadLetters
		store ObjectStore
		dl    *deadletter.Writer
	)
	if !j.Config.ScanOnly {
		bat, err := batcher.New(j.Batcher, j.Store, j.Log, nil)
		if err != nil {
			return Summary{}, err
		}
		bg := context.WithoutCancel(ctx)
		go bat.Run(bg)      // until Close
		defer bat.Close(bg) // waits for Run to return
		dl = deadletter.NewWriter(deadletter.Config{Prefix: j.Config.Prefix}, j.Store, j.Log, nil)
		go dl.Run(bg) // until dl.Close below
		sink, dls, store = manualFlush{bat}, dl, j.Store
	}
	bf, err := New(j.Config, j.Schema, j.Envelope, j.DB, sink, dls, store, j.Log)
	if err != nil {
		return Summary{}, err
	}
	stop := func(bool) {}
	if j.Show != nil {
		stop = j.Show(bf.Progress)
	}
	sum, runErr := bf.Run(ctx)
	stop(runErr == nil)
	if dl != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.Config.DrainTimeout)
		if err := dl.Close(dctx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("dead letters: %w", err))
		}
		cancel()
	}
	if runErr != nil && !j.Config.ScanOnly && !errors.Is(runErr, ErrJobMismatch) {
		runErr = fmt.Errorf("backfill %s stopped (progress is saved: run again with --job %s to resume): %w", j.Config.Job, j.Config.Job, runErr)
	}
	return sum, runErr
}

// manualFlush is the batcher as a Sink: a backfill flushes it with reason
// manual.
type manualFlush struct{ *batcher.Batcher }

func (m manualFlush) Flush(ctx context.Context) error {
	return m.Batcher.Flush(ctx, batcher.ReasonManual)
}

// Tables are the job's table and its children, which it fills and loads.
func (j *Job) Tables() []string {
	t := j.Schema.Table(j.Config.Table)
	names := []string{t.Name}
	for _, ch := range t.Children {
		names = append(names, ch.Name)
	}
	return names
}

// Load loads the job's tables now, so that its rows are queryable when it
// returns, and writes what each took to w. On an error the files stay
// pending for the next load.
func (j *Job) Load(ctx context.Context, w io.Writer) error {
	start := time.Now()
	res, err := j.Warehouse.Load(ctx, j.Tables()...)
	for _, name := range j.Tables() {
		r := res.Tables[name]
		fmt.Fprintf(w, "loaded %-28s files %5d  rows %9d  duplicates %7d\n", name, r.Files, r.Rows, r.Duplicates)
	}
	if err != nil {
		return fmt.Errorf("load after backfill (the files stay pending for the next load): %w", err)
	}
	fmt.Fprintf(w, "the rows are in the warehouse (load took %s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// Fill is `wharf backfill`: it runs the job and writes its summary to w,
// then, unless SkipLoad or ScanOnly, loads its tables and swaps a rebuild
// in.
func (j *Job) Fill(ctx context.Context, w io.Writer) error {
	sum, err := j.Run(ctx)
	sum.Write(w, j.Config.Table, j.Config.ScanOnly)
	if err != nil || j.Config.ScanOnly || j.SkipLoad {
		return err
	}
	if err := j.Load(ctx, w); err != nil || j.Rebuild == nil {
		return err
	}
	if err := j.Swap(ctx, sum); err != nil {
		return err
	}
	for _, r := range j.Rebuild {
		fmt.Fprintf(w, "swapped %s: it now holds the rebuilt rows; the old table is kept as %s\n", r.Target, r.Target+warehouse.ReplacedSuffix)
	}
	return nil
}

// Repair is `wharf audit --repair`: it backfills the hours of a where the
// warehouse has fewer rows than Mongo has documents (RepairWindows), loads
// them, audits again and writes the new audit (Audit.Write) to w.
func (j *Job) Repair(ctx context.Context, a Audit, w io.Writer, asJSON bool) error {
	if j.Config.Windows = RepairWindows(a.Diffs); len(j.Config.Windows) == 0 {
		if len(a.Diffs) > 0 {
			fmt.Fprintln(w, "nothing to repair: the warehouse has no fewer rows than Mongo has documents in any hour")
		}
		return nil
	}
	j.Config.Job = "repair-" + j.Config.Table + "-" + time.Now().UTC().Format("20060102T150405Z")
	j.Log.Info("repairing", zap.String("table", j.Config.Table), zap.Int("windows", len(j.Config.Windows)), zap.Int("hours", len(a.Diffs)))
	if err := j.Fill(ctx, w); err != nil {
		return err
	}
	after, err := j.Audit(ctx, a.From, a.To)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "after the repair:")
	after.Write(w, asJSON)
	return nil
}

// Swap swaps a complete rebuild's tables in for their targets, atomically
// (warehouse.Loader.ReplaceTables), and marks the job swapped.
func (j *Job) Swap(ctx context.Context, sum Summary) error {
	target := j.Rebuild[0].Target
	if !sum.Complete() {
		return fmt.Errorf("rebuild of %s: %d of %d ranges done; run again with --job %s", target, sum.RangesDone, sum.Ranges, j.Config.Job)
	}
	if err := j.Warehouse.ReplaceTables(ctx, j.Rebuild); err != nil {
		return fmt.Errorf("rebuild of %s: swap: %w (the rebuilt rows stay in %s; run again with --job %s to retry)", target, err, j.Config.Table, j.Config.Job)
	}
	marker := []byte(fmt.Sprintf(`{"table":%q,"swapped_at":%q}`, target, time.Now().UTC().Format(time.RFC3339)))
	if err := j.Store.Put(ctx, j.swappedKey(), bytes.NewReader(marker), int64(len(marker))); err != nil {
		j.Log.Warn("rebuild swapped in, but its marker was not written", zap.Error(err))
	}
	return nil
}

// RebuildSuffix ends the name of a table a rebuild fills before the swap.
const RebuildSuffix = "__rebuild"

// RebuildSchema reads the schema file data as it is now and returns the
// schema of a rebuild of the parent table name: that table and its
// children only, each renamed NAME__rebuild (schema.ParseTable), with the
// replacements that swap them in, the parent first.
func RebuildSchema(data []byte, name string) (*schema.Schema, []warehouse.Replacement, error) {
	sch, err := schema.ParseTable(data, name, RebuildSuffix)
	if err != nil {
		return nil, nil, err
	}
	var reps []warehouse.Replacement
	for _, t := range sch.All() {
		reps = append(reps, warehouse.Replacement{Target: t.Name[:len(t.Name)-len(RebuildSuffix)], Rebuilt: t.Name, Child: t.IsChild()})
	}
	return sch, reps, nil
}
