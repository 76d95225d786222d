package backfill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/s3store"
)

// Plan is a job's fixed description: what it reads and how the reading is
// split into ranges. It is written once, under PREFIX/_backfill/JOB/plan/,
// and every run and every shard of the job reads the same one, so the
// ranges never change under a resumed or sharded job.
type Plan struct {
	Version   int        `json:"version"`
	Job       string     `json:"job"`
	Table     string     `json:"table"`
	Filter    string     `json:"filter,omitempty"` // canonical extended JSON
	Since     *time.Time `json:"since,omitempty"`
	SinceFrom string     `json:"since_from,omitempty"` // "warehouse" when --since warehouse chose ReceivedSince (Since in plans made before it)
	// ReceivedSince bounds the documents' received (insertion) time.
	ReceivedSince *time.Time `json:"received_since,omitempty"`
	Until         *time.Time `json:"until,omitempty"`
	Windows       []Window   `json:"windows,omitempty"`
	Shards        int        `json:"shards"`
	Workers       int        `json:"workers"` // of the run that made the plan
	Created       time.Time  `json:"created"` // also the received_at of documents whose _id is not an ObjectId
	Ranges        []Range    `json:"ranges"`
}

// Range is a half-open interval of _id values in one collection: from Lo
// (inclusive; nil: from the first) to Hi (exclusive; nil: to the last). The
// ranges of a collection are adjacent and cover every value: no overlap, no
// gap. Range i belongs to shard i mod Shards.
type Range struct {
	Index      int    `json:"index"`
	Collection string `json:"collection"`
	Lo         *Key   `json:"lo,omitempty"`
	Hi         *Key   `json:"hi,omitempty"`
	// Types are the $type names of the _id types present in the collection
	// when the plan was made, when they are known exactly (a scan of every
	// _id); empty when unknown. Known types keep queries to one simple
	// range where a value of another type cannot be.
	Types    []string `json:"types,omitempty"`
	Estimate int64    `json:"estimate"` // documents, roughly; 0 when unknown
}

// Checkpoint is a range's progress, under PREFIX/_backfill/JOB/ranges/. It
// only moves once the rows of every document up to After are in S3 (or the
// document is in the dead-letter store, or was skipped).
type Checkpoint struct {
	Range   int       `json:"range"`
	After   *Key      `json:"after,omitempty"` // last durable _id; nil: none yet
	Docs    int64     `json:"docs"`            // documents durable, over every run
	Done    bool      `json:"done"`            // scanned to its end and all durable
	Updated time.Time `json:"updated"`
}

const planVersion = 1

// ObjectStore is what the backfill needs from S3: its plan and checkpoints.
// (*s3store.Store satisfies it.)
type ObjectStore interface {
	Put(ctx context.Context, key string, body io.Reader, size int64) error
	Get(ctx context.Context, key string) ([]byte, error)
	ListKeys(ctx context.Context, prefix string) ([]string, error)
}

var _ ObjectStore = (*s3store.Store)(nil)

// Dir is the folder of a job's plan and checkpoints under prefix (docs/design.md §5).
func Dir(prefix, job string) string { return prefix + "_backfill/" + job + "/" }

func (b *Backfill) planDir() string { return Dir(b.cfg.Prefix, b.cfg.Job) + "plan/" }
func (b *Backfill) checkpointKey(i int) string {
	return Dir(b.cfg.Prefix, b.cfg.Job) + fmt.Sprintf("ranges/%05d.json", i)
}

// ErrJobMismatch is returned when --job names a job started with other
// settings.
var ErrJobMismatch = errors.New("job mismatch")

// loadPlan returns the job's plan, or nil when there is none yet. When
// several shards each wrote a candidate, the first written (smallest ULID)
// is the plan.
func (b *Backfill) loadPlan(ctx context.Context) (*Plan, error) {
	keys, err := b.store.ListKeys(ctx, b.planDir())
	if err != nil {
		return nil, fmt.Errorf("read plan of job %s: %w", b.cfg.Job, err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return !strings.HasSuffix(k, ".json") })
	if len(keys) == 0 {
		return nil, nil
	}
	slices.Sort(keys)
	data, err := b.store.Get(ctx, keys[0])
	if err != nil {
		return nil, fmt.Errorf("read plan of job %s: %w", b.cfg.Job, err)
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("plan %s: %w", keys[0], err)
	}
	if p.Version != planVersion {
		return nil, fmt.Errorf("plan %s: version %d, want %d", keys[0], p.Version, planVersion)
	}
	return &p, nil
}

// jobPlan loads the job's plan, checking that it matches the settings, or
// makes and writes one. Shards of a new job race to write candidates; each
// waits SettleDelay and then adopts the first candidate written, so all
// agree as long as they start within SettleDelay of one another (a shard
// starting later finds the plan already there).
func (b *Backfill) jobPlan(ctx context.Context) (*Plan, error) {
	if b.cfg.ScanOnly {
		return b.makePlan(ctx)
	}
	p, err := b.loadPlan(ctx)
	if err != nil {
		return nil, err
	}
	if p != nil {
		return p, b.matches(p)
	}
	p, err = b.makePlan(ctx)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return nil, err
	}
	key := b.planDir() + ulid.MustNew(ulid.Now(), rand.Reader).String() + ".json"
	if err := b.store.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, fmt.Errorf("write plan of job %s: %w", b.cfg.Job, err)
	}
	if b.cfg.Shards > 1 {
		b.log.Info("waiting for the other shards' plans", zap.Duration("settle", b.cfg.SettleDelay))
		select {
		case <-time.After(b.cfg.SettleDelay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	got, err := b.loadPlan(ctx)
	if err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("plan of job %s: written but not listed", b.cfg.Job)
	}
	return got, b.matches(got)
}

// matches checks a stored plan against this run's settings. Workers may
// change between runs; the ranges stay.
func (b *Backfill) matches(p *Plan) error {
	var diffs []string
	if p.Table != b.cfg.Table {
		diffs = append(diffs, fmt.Sprintf("--table %s (this run: %s)", p.Table, b.cfg.Table))
	}
	if p.Filter != b.filterText {
		diffs = append(diffs, fmt.Sprintf("--filter %s (this run: %s)", orNone(p.Filter), orNone(b.filterText)))
	}
	if p.SinceFrom == "" && !sameTime(p.ReceivedSince, b.cfg.ReceivedSince) {
		diffs = append(diffs, fmt.Sprintf("received since %s (this run: %s)", sinceText("", p.ReceivedSince), sinceText("", timePtr(b.cfg.ReceivedSince))))
	}
	if p.SinceFrom != b.cfg.SinceFrom || (p.SinceFrom == "" && !sameTime(p.Since, b.cfg.Since)) {
		diffs = append(diffs, fmt.Sprintf("--since %s (this run: %s)", sinceText(p.SinceFrom, p.Since), sinceText(b.cfg.SinceFrom, timePtr(b.cfg.Since))))
	}
	if !sameTime(p.Until, b.cfg.Until) {
		diffs = append(diffs, fmt.Sprintf("--until %s (this run: %s)", sinceText("", p.Until), sinceText("", timePtr(b.cfg.Until))))
	}
	if !slices.EqualFunc(p.Windows, b.cfg.Windows, func(a, b Window) bool { return a.From.Equal(b.From) && a.To.Equal(b.To) }) {
		diffs = append(diffs, fmt.Sprintf("%d time windows (this run: %d)", len(p.Windows), len(b.cfg.Windows)))
	}
	if p.Shards != b.cfg.Shards {
		diffs = append(diffs, fmt.Sprintf("%d shards (this run: %d)", p.Shards, b.cfg.Shards))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: job %s was started with %s; use those settings to resume it, or another --job", ErrJobMismatch, b.cfg.Job, strings.Join(diffs, ", "))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func sinceText(from string, t *time.Time) string {
	if from != "" {
		return from
	}
	if t == nil {
		return "(none)"
	}
	return t.Format(time.RFC3339Nano)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func sameTime(p *time.Time, t time.Time) bool {
	if p == nil || p.IsZero() {
		return t.IsZero()
	}
	return p.Equal(t)
}

// makePlan splits each of the table's collections into Shards×Workers
// ranges at quantiles of a sample of its _ids. With one range per
// collection nothing is sampled.
func (b *Backfill) makePlan(ctx context.Context) (*Plan, error) {
	p := &Plan{
		Version: planVersion, Job: b.cfg.Job, Table: b.cfg.Table, Filter: b.filterText,
		Since: timePtr(b.cfg.Since), SinceFrom: b.cfg.SinceFrom, ReceivedSince: timePtr(b.cfg.ReceivedSince), Until: timePtr(b.cfg.Until), Windows: b.cfg.Windows,
		Shards: b.cfg.Shards, Workers: b.cfg.Workers, Created: time.Now().UTC().Truncate(time.Microsecond),
	}
	per := b.cfg.Shards * b.cfg.Workers
	for _, coll := range b.table.Collections() {
		if per == 1 {
			p.Ranges = append(p.Ranges, Range{Index: len(p.Ranges), Collection: coll})
			continue
		}
		start := time.Now()
		ks, err := b.src.sampleKeys(ctx, coll, min(max(per*100, 1000), 20_000))
		if err != nil {
			return nil, err
		}
		rs := splitRanges(coll, ks, per)
		for i := range rs {
			rs[i].Index = len(p.Ranges)
			p.Ranges = append(p.Ranges, rs[i])
		}
		b.log.Info("ranges planned", zap.String("collection", coll), zap.Int("ranges", len(rs)),
			zap.Int64("documents", ks.total), zap.Int("sample", len(ks.keys)), zap.Strings("types", ks.types),
			zap.Duration("duration", time.Since(start)))
	}
	return p, nil
}

// splitRanges cuts a collection into at most n ranges at quantiles of the
// sampled keys. The first range has no lower bound and the last no upper
// bound, so the ranges cover every _id whatever the sample missed.
func splitRanges(coll string, ks keySample, n int) []Range {
	keys := slices.Clone(ks.keys)
	slices.SortFunc(keys, func(a, b Key) int { return compareKeys(a.RawValue, b.RawValue) })
	keys = slices.CompactFunc(keys, func(a, b Key) bool { return compareKeys(a.RawValue, b.RawValue) == 0 })
	var bounds []Key
	for j := 1; j < n && len(keys) > 0; j++ {
		k := keys[j*len(keys)/n]
		if len(bounds) > 0 && compareKeys(bounds[len(bounds)-1].RawValue, k.RawValue) >= 0 {
			continue
		}
		if len(bounds) == 0 && compareKeys(keys[0].RawValue, k.RawValue) >= 0 {
			continue // an empty first range
		}
		bounds = append(bounds, k)
	}
	rs := make([]Range, len(bounds)+1)
	for i := range rs {
		rs[i] = Range{Collection: coll, Types: ks.types}
		if i > 0 {
			lo := bounds[i-1]
			rs[i].Lo = &lo
		}
		if i < len(bounds) {
			hi := bounds[i]
			rs[i].Hi = &hi
		}
		// Estimate from the share of the sample in the range.
		in := 0
		for _, k := range keys {
			if (rs[i].Lo == nil || compareKeys(k.RawValue, rs[i].Lo.RawValue) >= 0) && (rs[i].Hi == nil || compareKeys(k.RawValue, rs[i].Hi.RawValue) < 0) {
				in++
			}
		}
		if len(keys) > 0 {
			rs[i].Estimate = ks.total * int64(in) / int64(len(keys))
		} else {
			rs[i].Estimate = ks.total
		}
	}
	if len(ks.types) == 0 {
		for i := range rs {
			rs[i].Types = nil
		}
	}
	return rs
}

// loadCheckpoint returns range i's checkpoint, or a fresh one.
func (b *Backfill) loadCheckpoint(ctx context.Context, i int) (Checkpoint, error) {
	data, err := b.store.Get(ctx, b.checkpointKey(i))
	if errors.Is(err, s3store.ErrNotFound) {
		return Checkpoint{Range: i}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint of range %d: %w", i, err)
	}
	var c Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint of range %d: %w", i, err)
	}
	return c, nil
}

func (b *Backfill) saveCheckpoint(ctx context.Context, c Checkpoint) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := b.store.Put(ctx, b.checkpointKey(c.Range), bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("write checkpoint of range %d: %w", c.Range, err)
	}
	return nil
}
