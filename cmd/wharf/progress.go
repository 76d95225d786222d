package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/backfill"
)

// swapWriter is the log's output, redirected above the progress bars while
// they are drawn (a log line written straight to the terminal would tear
// them).
type swapWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *swapWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *swapWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// etaWindow is how far back the rate behind an ETA looks.
const etaWindow = 20 * time.Second

// rateMeter estimates the recent rate of a growing count sampled at ticks:
// the rate over about the last window, never reaching back before the count
// began to move, so that the time a backfill spends planning (or a range
// waits for its worker) is not taken for slow reading.
type rateMeter struct {
	window  time.Duration
	samples []rateSample // oldest first; samples[0] is the anchor
	moved   bool         // the count has moved since the first sample
}

type rateSample struct {
	at time.Time
	n  int64
}

func newRateMeter(window time.Duration) *rateMeter { return &rateMeter{window: window} }

// observe records the count n at now. started is when the count first moved
// (backfill.Progress.ReadStart), or zero when unknown: the rate is measured
// from it rather than from the last tick before it.
func (m *rateMeter) observe(now time.Time, n int64, started time.Time) {
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

// rate is the count's recent rate per second; 0 until it has moved.
func (m *rateMeter) rate() float64 {
	if !m.moved || len(m.samples) < 2 {
		return 0
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	if dt := b.at.Sub(a.at).Seconds(); dt > 0 {
		return float64(b.n-a.n) / dt
	}
	return 0
}

// eta is the time the remaining count takes at the recent rate; false when
// unknown (no rate yet) or nothing remains.
func (m *rateMeter) eta(remaining int64) (time.Duration, bool) {
	r := m.rate()
	if r <= 0 || remaining <= 0 {
		return 0, false
	}
	return time.Duration(float64(remaining) / r * float64(time.Second)), true
}

// progressFunc is what the reporters poll.
type progressFunc func() backfill.Progress

// progressLog scopes the progress lines to their job and shard, so that
// the lines of N shards logging to one place can be told apart and summed
// (docs/operations.md groups them by job and shard).
func progressLog(log *zap.Logger, bc backfill.Config) *zap.Logger {
	return log.With(zap.String("job", bc.Job), zap.Int("shard", bc.Shard), zap.Int("shards", bc.Shards))
}

// logProgress writes a structured progress line every interval until ctx
// ends.
func logProgress(ctx context.Context, get progressFunc, log *zap.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	lastAt := time.Now()
	meter := newRateMeter(etaWindow)
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
			meter.observe(now, p.Read, p.ReadStart)
			if eta, ok := meter.eta(total - done); ok {
				fields = append(fields, zap.Duration("eta", eta.Round(time.Second)))
			}
			log.Info("backfill progress", fields...)
		}
	}
}

// barProgress draws one bar per range (so per worker: a worker scans one
// range at a time) and one for the whole run, with documents done of the
// estimate, documents per second and ETA, until stop.
type barProgress struct {
	now    func() time.Time
	p      *mpb.Progress
	get    progressFunc
	bars   map[int]*rangeBar
	total  *rangeBar
	cancel context.CancelFunc
	done   chan struct{}
}

type rangeBar struct {
	bar   *mpb.Bar
	rate  atomic.Int64 // documents per second, recently
	eta   atomic.Int64 // seconds; -1 unknown
	meter *rateMeter   // used by update only
}

func startBars(get progressFunc, out io.Writer, logs *swapWriter) *barProgress {
	ctx, cancel := context.WithCancel(context.Background())
	bp := &barProgress{
		now: time.Now,
		p:   mpb.New(mpb.WithOutput(out), mpb.WithAutoRefresh(), mpb.WithWidth(100), mpb.WithRefreshRate(250*time.Millisecond)),
		get: get, bars: map[int]*rangeBar{}, cancel: cancel, done: make(chan struct{}),
	}
	logs.set(bp.p)
	go bp.loop(ctx)
	return bp
}

func (bp *barProgress) newBar(name string, priority int) *rangeBar {
	rb := &rangeBar{meter: newRateMeter(etaWindow)}
	rb.eta.Store(-1)
	rb.bar = bp.p.New(0, mpb.BarStyle().Lbound("[").Rbound("]"),
		mpb.BarPriority(priority),
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
			decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			s := fmt.Sprintf("%6d docs/s", rb.rate.Load())
			if eta := rb.eta.Load(); eta >= 0 {
				s += "  ETA " + (time.Duration(eta) * time.Second).String()
			}
			return s
		})))
	return rb
}

func (bp *barProgress) loop(ctx context.Context) {
	defer close(bp.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		bp.update()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// update moves the bars to the latest progress.
func (bp *barProgress) update() {
	p := bp.get()
	if len(p.Ranges) == 0 {
		return
	}
	if bp.total == nil {
		for _, r := range p.Ranges {
			bp.bars[r.Index] = bp.newBar(fmt.Sprintf("range %d %s", r.Index, r.Collection), r.Index)
		}
		bp.total = bp.newBar("total", len(p.Ranges)+1)
	}
	now := bp.now()
	var done, total int64
	for _, r := range p.Ranges {
		rb := bp.bars[r.Index]
		est := max(r.Estimate, r.Done)
		if !r.Finished {
			est = max(est, r.Done+1) // an estimate is not a promise: never look finished early
		}
		// A range's reading starts when its worker takes it: its meter
		// starts from its own first move.
		set(rb, now, r.Done, est, time.Time{})
		done, total = done+r.Done, total+est
	}
	set(bp.total, now, done, total, p.ReadStart)
}

// set moves a bar to done of total at now, with the recent rate and the
// ETA at that rate.
func set(rb *rangeBar, now time.Time, done, total int64, started time.Time) {
	rb.meter.observe(now, done, started)
	rb.rate.Store(int64(rb.meter.rate()))
	if eta, ok := rb.meter.eta(total - done); ok {
		rb.eta.Store(int64(eta.Round(time.Second) / time.Second))
	} else {
		rb.eta.Store(-1)
	}
	rb.bar.SetTotal(total, false)
	rb.bar.SetCurrent(done)
}

// stop draws the final state and removes the bars' hold on the terminal:
// complete bars when ok, bars left where they stopped otherwise.
func (bp *barProgress) stop(ok bool, logs *swapWriter, restore io.Writer) {
	bp.cancel()
	<-bp.done
	bp.update()
	all := []*rangeBar{bp.total}
	for _, rb := range bp.bars {
		all = append(all, rb)
	}
	for _, rb := range all {
		if rb == nil {
			continue
		}
		if ok {
			rb.eta.Store(-1)
			rb.bar.SetTotal(-1, true)
		} else {
			rb.bar.Abort(false)
		}
	}
	logs.set(restore)
	bp.p.Wait()
}
