// Package bars draws a backfill's progress on a terminal: one bar per range
// (so per worker: a worker scans one range at a time) and one for the whole
// run, with documents done of the estimate, documents per second and ETA.
package bars

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/wharfdata/wharf/backfill"
)

// LogWriter is the log's output, redirected above the bars while they are
// drawn (a log line written straight to the terminal would tear them).
type LogWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogWriter returns a LogWriter writing to w until bars are drawn.
func NewLogWriter(w io.Writer) *LogWriter { return &LogWriter{w: w} }

func (s *LogWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *LogWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// Bars are the bars of one run, redrawn from its progress until Stop.
type Bars struct {
	now    func() time.Time
	p      *mpb.Progress
	get    func() backfill.Progress
	bars   map[int]*rangeBar
	total  *rangeBar
	logs   *LogWriter
	out    io.Writer
	cancel context.CancelFunc
	done   chan struct{}
}

type rangeBar struct {
	bar   *mpb.Bar
	rate  atomic.Int64        // documents per second, recently
	eta   atomic.Int64        // seconds; -1 unknown
	meter *backfill.RateMeter // used by update only
}

// Start draws the bars of get's progress on out, and the log lines written
// to logs above them, until Stop.
func Start(get func() backfill.Progress, out io.Writer, logs *LogWriter) *Bars {
	ctx, cancel := context.WithCancel(context.Background())
	bp := &Bars{
		now: time.Now,
		p:   mpb.New(mpb.WithOutput(out), mpb.WithAutoRefresh(), mpb.WithWidth(100), mpb.WithRefreshRate(250*time.Millisecond)),
		get: get, bars: map[int]*rangeBar{}, logs: logs, out: out, cancel: cancel, done: make(chan struct{}),
	}
	logs.set(bp.p)
	go bp.loop(ctx)
	return bp
}

func (bp *Bars) newBar(name string, priority int) *rangeBar {
	rb := &rangeBar{meter: backfill.NewRateMeter(backfill.ETAWindow)}
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

func (bp *Bars) loop(ctx context.Context) {
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
func (bp *Bars) update() {
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
	rb.meter.Observe(now, done, started)
	rb.rate.Store(int64(rb.meter.Rate()))
	if eta, ok := rb.meter.ETA(total - done); ok {
		rb.eta.Store(int64(eta.Round(time.Second) / time.Second))
	} else {
		rb.eta.Store(-1)
	}
	rb.bar.SetTotal(total, false)
	rb.bar.SetCurrent(done)
}

// Stop draws the final state and removes the bars' hold on the terminal:
// complete bars when ok, bars left where they stopped otherwise. The log
// writes to the bars' output again.
func (bp *Bars) Stop(ok bool) {
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
	bp.logs.set(bp.out)
	bp.p.Wait()
}

// Display is where a backfill's progress goes: bars on a terminal, log
// lines, or nowhere.
type Display struct {
	Mode     string     // bar, log or none
	Terminal bool       // Out is a terminal
	Out      io.Writer  // where bars are drawn
	Logs     *LogWriter // the log's output: above the bars while they are drawn
	Log      *zap.Logger
}

// NewDisplay resolves mode (auto: bars on a terminal, log lines otherwise;
// bar, log or none) for out. Set Log to a logger writing to Logs.
func NewDisplay(mode string, out io.Writer) (*Display, error) {
	d := &Display{Mode: mode, Out: out, Logs: NewLogWriter(out)}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		d.Terminal = true
	}
	switch mode {
	case "auto":
		if d.Mode = "log"; d.Terminal {
			d.Mode = "bar"
		}
	case "bar", "log", "none":
	default:
		return nil, fmt.Errorf("--progress must be auto, bar, log or none, not %q", mode)
	}
	return d, nil
}

// Show makes j show its progress on d until its run ends: bars (Start),
// or a progress line every interval (backfill.LogProgress) naming the job
// and shard, or nothing.
func (d *Display) Show(j *backfill.Job, every time.Duration) {
	j.Show = func(get func() backfill.Progress) (stop func(ok bool)) {
		switch d.Mode {
		case "bar":
			return Start(get, d.Out, d.Logs).Stop
		case "log":
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			log := backfill.ProgressLog(d.Log, j.Config)
			go func() { defer close(done); backfill.LogProgress(ctx, get, log, every) }()
			return func(bool) { cancel(); <-done }
		}
		return func(bool) {}
	}
}
