package backfill

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// The ETA rests on the rate since reading started, over the recent past:
// not on the time spent planning, nor on a rate long gone. Each case feeds
// the progress a backfill reports, tick by tick on an injected clock, and
// checks the ETA of the last line.
func TestProgressETA(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	type tick struct {
		at   time.Duration // since the run began
		read int64         // documents read by then
	}
	// steady reads rate docs/s from start on, sampled every step until end.
	steady := func(start, end, step time.Duration, rate float64) []tick {
		var ts []tick
		for at := time.Duration(0); at <= end; at += step {
			var n int64
			if at > start {
				n = int64(rate * (at - start).Seconds())
			}
			ts = append(ts, tick{at, n})
		}
		return ts
	}
	for _, tc := range []struct {
		name      string
		readStart time.Duration // when the first document was read (0: as the ticks say)
		ticks     []tick
		total     int64
		want      time.Duration
		tolerance time.Duration
	}{
		{
			// The run: 35 s of planning, then 17,000 docs/s; 10 s
			// of reading are left (the old ETA said 251 s).
			name: "after a long plan, bars", readStart: 35 * time.Second,
			ticks: steady(35*time.Second, 45*time.Second, 250*time.Millisecond, 17000),
			total: 17000 * 20, want: 10 * time.Second, tolerance: time.Second,
		},
		{
			// Progress lines every 5 s: the last tick before reading began
			// is at 30 s, reading began at 33 s.
			name: "after a long plan, log lines", readStart: 33 * time.Second,
			ticks: steady(33*time.Second, 45*time.Second, 5*time.Second, 17000),
			total: 17000 * 22, want: 10 * time.Second, tolerance: time.Second,
		},
		{
			// 60 s at 20,000 docs/s, then a slowdown to 5,000 docs/s for
			// 60 s: the ETA follows the recent rate.
			name: "a slowdown",
			ticks: func() []tick {
				var ts []tick
				for s := 0; s <= 120; s++ {
					n := int64(20000 * min(s, 60))
					if s > 60 {
						n += int64(5000 * (s - 60))
					}
					ts = append(ts, tick{time.Duration(s) * time.Second, n})
				}
				return ts
			}(),
			total: 20000*60 + 5000*60 + 5000*100, want: 100 * time.Second, tolerance: 5 * time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewRateMeter(20 * time.Second)
			var eta time.Duration
			var ok bool
			for _, tk := range tc.ticks {
				p := Progress{Read: tk.read, Elapsed: tk.at,
					Ranges: []RangeProgress{{Done: tk.read, Estimate: tc.total}}}
				if tc.readStart > 0 && tk.read > 0 {
					p.ReadStart = t0.Add(tc.readStart)
				}
				m.Observe(t0.Add(tk.at), p.Read, p.ReadStart)
				eta, ok = m.ETA(tc.total - tk.read)
			}
			if !ok {
				t.Fatal("no ETA")
			}
			if d := eta - tc.want; d < -tc.tolerance || d > tc.tolerance {
				t.Fatalf("ETA %s, want %s ± %s", eta, tc.want, tc.tolerance)
			}
		})
	}
}

// Before any document is read there is no rate and no ETA.
func TestProgressETAUnknownWhilePlanning(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	m := NewRateMeter(20 * time.Second)
	for s := 0; s < 30; s++ {
		m.Observe(t0.Add(time.Duration(s)*time.Second), 0, time.Time{})
		if _, ok := m.ETA(1000); ok || m.Rate() != 0 {
			t.Fatalf("at %ds: rate %v, an ETA while planning", s, m.Rate())
		}
	}
}

// Each "backfill progress" line names its job and shard, which the
// runbook's Logs Insights query groups by, with the shard's done count.
func TestProgressLogNamesJobAndShard(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	bc := Config{Job: "orders-2019", Shard: 3, Shards: 8}
	get := func() Progress {
		return Progress{Read: 10, Ranges: []RangeProgress{{Done: 40, Estimate: 100}, {Done: 2, Estimate: 50}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); LogProgress(ctx, get, ProgressLog(zap.New(core), bc), time.Millisecond) }()
	stacktest.WaitFor(10*time.Second, func() bool { return logs.FilterMessage("backfill progress").Len() > 0 })
	cancel()
	<-done
	lines := logs.FilterMessage("backfill progress").All()
	if len(lines) == 0 {
		t.Fatal("no progress line")
	}
	f := lines[0].ContextMap()
	if f["job"] != "orders-2019" || f["shard"] != int64(3) || f["shards"] != int64(8) || f["done"] != int64(42) {
		t.Errorf("progress line fields %v, want job orders-2019, shard 3, shards 8, done 42", f)
	}
}
