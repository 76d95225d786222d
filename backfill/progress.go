package backfill

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// ETAWindow is how far back the rate behind an ETA looks.
const ETAWindow = 20 * time.Second

// RateMeter estimates the recent rate of a growing count sampled at ticks:
// the rate over about the last window, never reaching back before the count
// began to move, so that the time a backfill spends planning (or a range
// waits for its worker) is not taken for slow reading.
type RateMeter struct {
	window  time.Duration
	samples []rateSample // oldest first; samples[0] is the anchor
	moved   bool         // the count has moved since the first sample
}

type rateSample struct {
	at time.Time
	n  int64
}

// NewRateMeter returns a meter of the rate over about window.
func NewRateMeter(window time.Duration) *RateMeter { return &RateMeter{window: window} }

// Observe records the count n at now. started is when the count first moved
// (Progress.ReadStart), or zero when unknown: the rate is measured from it
// rather than from the last tick before it.
func (m *RateMeter) Observe(now time.Time, n int64, started time.Time) {
	if len(m.samples) == 0 {
		m.samples = append(m.samples, rateSample{now, n})
		return
	}
	if !m.moved {
		anchor := m.samples[len(m.samples)-1]
		if n == anchor.n {
			m.samples = append(m.samples[:0], rateSample{now, n}) // still idle: the latest idle tick is the anchor
			return
		}
		m.moved = true
		if !started.IsZero() && started.After(anchor.at) && started.Before(now) {
			anchor.at = started
		}
		m.samples = append(m.samples[:0], anchor)
	}
	m.samples = append(m.samples, rateSample{now, n})
	cut := now.Add(-m.window)
	for len(m.samples) > 2 && !m.samples[1].at.After(cut) {
		m.samples = m.samples[1:]
	}
}

// Rate is the count's recent rate per second; 0 until it has moved.
func (m *RateMeter) Rate() float64 {
	if !m.moved || len(m.samples) < 2 {
		return 0
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	if dt := b.at.Sub(a.at).Seconds(); dt > 0 {
		return float64(b.n-a.n) / dt
	}
	return 0
}

// ETA is the time the remaining count takes at the recent rate; false when
// unknown (no rate yet) or nothing remains.
func (m *RateMeter) ETA(remaining int64) (time.Duration, bool) {
	r := m.Rate()
	if r <= 0 || remaining <= 0 {
		return 0, false
	}
	return time.Duration(float64(remaining) / r * float64(time.Second)), true
}

// ProgressLog scopes the progress lines to their job and shard, so that
// the lines of N shards logging to one place can be told apart and summed
// (docs/operations.md groups them by job and shard).
func ProgressLog(log *zap.Logger, cfg Config) *zap.Logger {
	return log.With(zap.String("job", cfg.Job), zap.Int("shard", cfg.Shard), zap.Int("shards", cfg.Shards))
}

// LogProgress writes a structured "backfill progress" line of what get
// returns every interval until ctx ends.
func LogProgress(ctx context.Context, get func() Progress, log *zap.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	lastAt := time.Now()
	meter := NewRateMeter(ETAWindow)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p := get()
			var done, total int64
			ranges, finished := len(p.Ranges), 0
			for _, r := range p.Ranges {
				done += r.Done
				total += max(r.Estimate, r.Done)
				if r.Finished {
					finished++
				}
			}
			rate := float64(p.Read-last) / now.Sub(lastAt).Seconds()
			last, lastAt = p.Read, now
			fields := []zap.Field{zap.Int64("documents", p.Read), zap.Int64("rows", p.Rows), zap.Int64("durable", p.Durable),
				zap.Int64("done", done), zap.Int64("total_estimate", total), zap.Float64("docs_per_s", float64(int64(rate*10))/10),
				zap.Int("ranges", ranges), zap.Int("ranges_finished", finished), zap.Duration("elapsed", p.Elapsed.Round(time.Second))}
			meter.Observe(now, p.Read, p.ReadStart)
			if eta, ok := meter.ETA(total - done); ok {
				fields = append(fields, zap.Duration("eta", eta.Round(time.Second)))
			}
			log.Info("backfill progress", fields...)
		}
	}
}
