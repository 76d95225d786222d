package backfill

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

func TestRebuildSchema(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "deploy", "local", "tables.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sch, reps, err := RebuildSchema(data, "actions_taken")
	if err != nil {
		t.Fatal(err)
	}
	tbl := sch.Table("actions_taken__rebuild")
	if tbl == nil || len(sch.All()) != 2 || tbl.Children[0].Name != "actions_taken_tags__rebuild" {
		t.Fatalf("rebuild schema: %d tables", len(sch.All()))
	}
	if tbl.Time != "date" || tbl.Collections()[0] != "actions_taken" || len(tbl.Columns) == 0 {
		t.Errorf("the rebuilt table lost its rules: time %q, collections %v", tbl.Time, tbl.Collections())
	}
	want := []warehouse.Replacement{{Target: "actions_taken", Rebuilt: "actions_taken__rebuild"}, {Target: "actions_taken_tags", Rebuilt: "actions_taken_tags__rebuild", Child: true}}
	if !slices.Equal(reps, want) {
		t.Errorf("replacements %v, want %v", reps, want)
	}
	if _, _, err := RebuildSchema(data, "actions_taken_tags"); err == nil {
		t.Error("a child table cannot be rebuilt alone")
	}
}

func TestRepairWindows(t *testing.T) {
	h := func(i int) time.Time { return time.Date(2024, 1, 1, i, 0, 0, 0, time.UTC) }
	got := RepairWindows([]HourDiff{{h(1), 5, 3}, {h(2), 4, 0}, {h(3), 1, 2}, {h(5), 9, 8}, {h(6), 1, 0}})
	want := []Window{{From: h(1), To: h(3)}, {From: h(5), To: h(7)}}
	if !slices.EqualFunc(got, want, func(a, b Window) bool { return a.From.Equal(b.From) && a.To.Equal(b.To) }) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// fakeWarehouse counts rows per hour as a loader would after loading what
// the job wrote; it records loads and swaps.
type fakeWarehouse struct {
	mu      sync.Mutex
	hours   map[time.Time]int64
	loaded  [][]string
	swapped []warehouse.Replacement
}

func (f *fakeWarehouse) Apply(context.Context) error { return nil }
func (f *fakeWarehouse) MaxReceivedAt(context.Context, string) (time.Time, bool, error) {
	return time.Time{}, false, nil
}
func (f *fakeWarehouse) HourlyCounts(context.Context, string, time.Time, time.Time) (map[time.Time]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.hours), nil
}
func (f *fakeWarehouse) Load(_ context.Context, tables ...string) (warehouse.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loaded = append(f.loaded, tables)
	return warehouse.Result{}, nil
}
func (f *fakeWarehouse) ReplaceTables(_ context.Context, reps []warehouse.Replacement) error {
	f.swapped = reps
	return nil
}

// A job audits a table hour by hour, backfills exactly the hours the
// warehouse lacks, and loads its tables; a rebuild swaps in once, then its
// job is refused (ErrSwapped). No CLI: the job's parts are given to it.
func TestJobAuditRepairAndSwap(t *testing.T) {
	e := newStackEnv(t)
	sch := mustParse(t, `tables:
- name: clicks
  events: [click]
  collection: clicks
  columns: [{name: n, path: n, type: integer}]
`)
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-10 * time.Hour)
	for i := range 6 {
		e.insert("clicks", bson.D{{Key: "event", Value: "click"}, {Key: "n", Value: i}, {Key: "timestamp", Value: h0.Add(time.Duration(i/2) * time.Hour).Format(time.RFC3339)}})
	}
	wh := &fakeWarehouse{hours: map[time.Time]int64{h0: 2, h0.Add(time.Hour): 1}}
	cfg := DefaultConfig()
	cfg.Table, cfg.Prefix, cfg.Job, cfg.Workers, cfg.CheckpointInterval = "clicks", "p/", "repair-1", 1, 50*time.Millisecond
	bc := batcher.DefaultConfig()
	bc.Prefix = "p/"
	j := &Job{Config: cfg, Schema: sch, Envelope: schema.DefaultEnvelope(), DB: e.db, Store: e.store, Batcher: bc, Warehouse: wh, Log: zaptest.NewLogger(t)}
	ctx := context.Background()
	a, err := j.Audit(ctx, h0, h0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a.Mongo != 6 || a.Warehouse != 3 || len(a.Diffs) != 2 {
		t.Fatalf("audit: %+v", a)
	}
	var out strings.Builder
	if err := j.Repair(ctx, a, &out, false); err != nil {
		t.Fatal(err)
	}
	if len(j.Config.Windows) != 1 || !j.Config.Windows[0].From.Equal(h0.Add(time.Hour)) || !j.Config.Windows[0].To.Equal(h0.Add(3*time.Hour)) {
		t.Fatalf("windows %v", j.Config.Windows)
	}
	for _, want := range []string{"1 of 1 ranges done", "rows            clicks 4", "loaded clicks", "after the repair:\naudit of clicks"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the repair's report lacks %q:\n%s", want, out.String())
		}
	}
	if len(wh.loaded) != 1 || !slices.Equal(wh.loaded[0], []string{"clicks"}) {
		t.Fatalf("loads: %v", wh.loaded)
	}

	j.Config.Job, j.Config.Windows = "rebuild-1", nil
	j.Rebuild = []warehouse.Replacement{{Target: "clicks", Rebuilt: "clicks__rebuild"}}
	if err := j.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := j.Swap(ctx, Summary{Ranges: 2, RangesDone: 1}); err == nil || len(wh.swapped) != 0 {
		t.Fatalf("an incomplete rebuild was swapped in: %v", err)
	}
	if err := j.Swap(ctx, Summary{Ranges: 2, RangesDone: 2}); err != nil || len(wh.swapped) != 1 {
		t.Fatalf("swap: %v, %v", wh.swapped, err)
	}
	if err := j.Prepare(ctx); !errors.Is(err, ErrSwapped) {
		t.Fatalf("a job swapped in already: %v, want ErrSwapped", err)
	}
}
