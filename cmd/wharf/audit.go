package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/warehouse"
)

// hourDiff is one hour whose counts differ.
type hourDiff struct {
	Hour      time.Time `json:"hour"`
	Mongo     int64     `json:"mongo"`
	Warehouse int64     `json:"warehouse"`
}

// cmdAudit compares, hour by hour, the documents in Mongo with the rows in
// the warehouse for one table, and with --repair backfills exactly the hours
// where the warehouse has fewer.
func cmdAudit(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("audit", stderr)
	table := fs.String("table", "", "the table to audit (required)")
	since := fs.String("since", "", "start of the event time range (RFC 3339 or YYYY-MM-DD; required)")
	until := fs.String("until", "", "end of the range, exclusive (default: the start of the current hour)")
	repair := fs.Bool("repair", false, "backfill the hours where the warehouse has fewer rows than Mongo has documents, then load and audit again")
	workers := fs.Int("workers", 0, "with --repair: ranges scanned at once (default backfill.workers)")
	progress := fs.String("progress", "auto", "with --repair: auto, bar, log or none")
	asJSON := fs.Bool("json", false, "print the differing hours as JSON lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := c.validate(need{s3: true, warehouse: true, mongo: true}); err != nil {
		return err
	}
	if c.Mongo.URI == "" {
		return badConfig("mongo.uri is required for audit (or WHARF_MONGO_URI)")
	}
	sch, err := loadSchema(c)
	if err != nil {
		return err
	}
	t := sch.Table(*table)
	switch {
	case *table == "":
		return usageError("--table is required")
	case t == nil:
		return usageError("--table: no table %q in %s", *table, c.Schema)
	case t.IsChild():
		return usageError("--table %s is a child table: audit its parent, %s", t.Name, t.Parent.Name)
	case *since == "":
		return usageError("--since is required")
	}
	from, err := parseWhen(*since)
	if err != nil {
		return usageError("--since: %v", err)
	}
	from = from.Truncate(time.Hour)
	to := time.Now().UTC().Truncate(time.Hour)
	if *until != "" {
		if to, err = parseWhen(*until); err != nil {
			return usageError("--until: %v", err)
		}
	}
	if !to.After(from) {
		return usageError("--until %s is not after --since %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	mode, logs, log, err := progressLogger(c, *progress, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	if *repair {
		softMemoryLimit(c, env)
	}

	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	mc, err := newBackfillMongo(bg, c)
	if err != nil {
		return err
	}
	defer mc.Disconnect(context.Background())
	db := mc.Database(c.Mongo.Database)
	ac, err := awsConfig(bg, env)
	if err != nil {
		return err
	}
	s3 := newS3(ac, c)
	pool, err := newPool(bg, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	loader, err := warehouse.New(c.warehouseConfig(), pool, s3, sch, log, nil)
	if err != nil {
		return badConfig("%v", err)
	}
	if err := loader.Apply(ctx); err != nil {
		return err
	}

	audit := func() ([]hourDiff, string, int64, int64, error) {
		mongo, method, err := backfill.CountHours(ctx, db, sch, c.envelope(), t.Name, from, to, c.Backfill.ReadPreference)
		if err != nil {
			return nil, "", 0, 0, err
		}
		wh, err := loader.HourlyCounts(ctx, t.Name, from, to)
		if err != nil {
			return nil, "", 0, 0, err
		}
		var diffs []hourDiff
		var nm, nw int64
		hours := map[time.Time]bool{}
		for h, n := range mongo {
			hours[h] = true
			nm += n
		}
		for h, n := range wh {
			hours[h] = true
			nw += n
		}
		for _, h := range slices.SortedFunc(maps.Keys(hours), time.Time.Compare) {
			if mongo[h] != wh[h] {
				diffs = append(diffs, hourDiff{Hour: h, Mongo: mongo[h], Warehouse: wh[h]})
			}
		}
		return diffs, method, nm, nw, nil
	}
	report := func(diffs []hourDiff, method string, nm, nw int64) {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			for _, d := range diffs {
				enc.Encode(d)
			}
			return
		}
		fmt.Fprintf(stdout, "audit of %s from %s to %s: Mongo %d documents, warehouse %d rows (Mongo counted by %s)\n",
			t.Name, from.Format(time.RFC3339), to.Format(time.RFC3339), nm, nw, method)
		if len(diffs) == 0 {
			fmt.Fprintln(stdout, "  every hour matches")
			return
		}
		fmt.Fprintf(stdout, "  %d hours differ:\n  %-20s %9s %9s %9s\n", len(diffs), "hour (UTC)", "mongo", "warehouse", "missing")
		for i, d := range diffs {
			if i == 50 && len(diffs) > 60 {
				fmt.Fprintf(stdout, "  … and %d more\n", len(diffs)-50)
				break
			}
			fmt.Fprintf(stdout, "  %-20s %9d %9d %9d\n", d.Hour.Format("2006-01-02T15:04Z"), d.Mongo, d.Warehouse, d.Mongo-d.Warehouse)
		}
	}

	diffs, method, nm, nw, err := audit()
	if err != nil {
		return err
	}
	report(diffs, method, nm, nw)
	if !*repair {
		return nil
	}
	windows := repairWindows(diffs)
	if len(windows) == 0 {
		if len(diffs) > 0 {
			fmt.Fprintln(stdout, "nothing to repair: the warehouse has no fewer rows than Mongo has documents in any hour")
		}
		return nil
	}
	bc := backfill.DefaultConfig()
	bc.Table, bc.Prefix, bc.Windows = t.Name, c.S3.Prefix, windows
	bc.Workers, bc.BatchSize, bc.ReadPreference = c.Backfill.Workers, c.Backfill.BatchSize, c.Backfill.ReadPreference
	bc.CheckpointInterval, bc.MaxPending, bc.DrainTimeout = time.Duration(c.Backfill.CheckpointInterval), c.Backfill.MaxPending, time.Duration(c.DrainTimeout)
	if *workers != 0 {
		bc.Workers = *workers
	}
	bc.Job = "repair-" + t.Name + "-" + time.Now().UTC().Format("20060102T150405Z")
	log.Info("repairing", zap.String("table", t.Name), zap.Int("windows", len(windows)), zap.Int("hours", len(diffs)))
	sum, err := runBackfill(ctx, bg, c, sch, bc, db, s3, log, logs, stderr, mode, 5*time.Second)
	printSummary(stdout, t, sum, false)
	if err != nil {
		return err
	}
	if err := loadAfterBackfill(ctx, loader, t, stdout); err != nil {
		return err
	}
	diffs, method, nm, nw, err = audit()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "after the repair:")
	report(diffs, method, nm, nw)
	return nil
}

// repairWindows merges the hours where Mongo has more than the warehouse
// into windows of consecutive hours.
func repairWindows(diffs []hourDiff) []backfill.Window {
	var ws []backfill.Window
	for _, d := range diffs {
		if d.Mongo <= d.Warehouse {
			continue
		}
		end := d.Hour.Add(time.Hour)
		if n := len(ws); n > 0 && ws[n-1].To.Equal(d.Hour) {
			ws[n-1].To = end
			continue
		}
		ws = append(ws, backfill.Window{From: d.Hour, To: end})
	}
	return ws
}
