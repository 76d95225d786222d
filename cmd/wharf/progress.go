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

// progressFunc is what the reporters poll.
type progressFunc func() backfill.Progress

// logProgress writes a structured progress line every interval until ctx
// ends.
func logProgress(ctx context.Context, get progressFunc, log *zap.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	lastAt := time.Now()
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
			if overall := float64(p.Read) / p.Elapsed.Seconds(); overall > 0 && total > done {
				fields = append(fields, zap.Duration("eta", (time.Duration(float64(total-done)/overall)*time.Second).Round(time.Second)))
			}
			log.Info("backfill progress", fields...)
		}
	}
}

// barProgress draws one bar per range (so per worker: a worker scans one
// range at a time) and one for the whole run, with documents done of the
// estimate, documents per second and ETA, until stop.
type barProgress struct {
	p      *mpb.Progress
	get    progressFunc
	bars   map[int]*rangeBar
	total  *rangeBar
	cancel context.CancelFunc
	done   chan struct{}
}

type rangeBar struct {
	bar   *mpb.Bar
	rate  atomic.Int64 // documents per second, this run
	eta   atomic.Int64 // seconds; -1 unknown
	start int64        // documents done when first seen
}

func startBars(get progressFunc, out io.Writer, logs *swapWriter) *barProgress {
	ctx, cancel := context.WithCancel(context.Background())
	bp := &barProgress{
		p:   mpb.New(mpb.WithOutput(out), mpb.WithAutoRefresh(), mpb.WithWidth(100), mpb.WithRefreshRate(250*time.Millisecond)),
		get: get, bars: map[int]*rangeBar{}, cancel: cancel, done: make(chan struct{}),
	}
	logs.set(bp.p)
	go bp.loop(ctx)
	return bp
}

func (bp *barProgress) newBar(name string, priority int) *rangeBar {
	rb := &rangeBar{}
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
			bp.bars[r.Index].start = r.Done
		}
		bp.total = bp.newBar("total", len(p.Ranges)+1)
	}
	secs := max(p.Elapsed.Seconds(), 0.001)
	var done, total, start int64
	for _, r := range p.Ranges {
		rb := bp.bars[r.Index]
		est := max(r.Estimate, r.Done)
		if !r.Finished {
			est = max(est, r.Done+1) // an estimate is not a promise: never look finished early
		}
		set(rb, r.Done, est, secs)
		done, total, start = done+r.Done, total+est, start+rb.start
	}
	bp.total.start = start
	set(bp.total, done, total, secs)
}

func set(rb *rangeBar, done, total int64, secs float64) {
	rate := float64(done-rb.start) / secs
	rb.rate.Store(int64(rate))
	if rate > 0 && total > done {
		rb.eta.Store(int64(float64(total-done) / rate))
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
