package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// paceResult is what `pace` prints.
type paceResult struct {
	Sent       int64   `json:"sent"`
	Seconds    float64 `json:"seconds"`
	EventsPerS float64 `json:"events_per_s"`
	MaxLagMS   float64 `json:"max_lag_ms"` // how late the latest batch was sent against its schedule
	Batches    int64   `json:"batches"`
}

// eventTimeLayout is RFC 3339 with milliseconds.
const eventTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// cmdPace sends page_view events (the demo schema's page_views table) at
// -rate events/s for -duration, in SendMessageBatch calls of ten scheduled
// evenly, each event's timestamp its send time. A batch that falls behind
// its schedule is sent as soon as a sender is free, so the average rate
// holds; -workers senders run at once.
func cmdPace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pace", stderr)
	queueURL := fs.String("queue-url", "", "SQS queue (required)")
	rate := fs.Float64("rate", 1000, "events per second")
	duration := fs.Duration("duration", time.Minute, "how long to send")
	workers := fs.Int("workers", 8, "concurrent SendMessageBatch calls")
	prefix := fs.String("id-prefix", "pace", "prefix of event ids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *queueURL == "" || *rate <= 0 || *duration <= 0 || *workers < 1 {
		return errors.New("pace: -queue-url is required; -rate, -duration and -workers must be positive")
	}
	client, err := newSQS(ctx)
	if err != nil {
		return err
	}
	total := int64(*rate * duration.Seconds())
	batches := (total + 9) / 10
	every := time.Duration(float64(time.Second) * 10 / *rate)

	var (
		sent, next atomic.Int64
		maxLag     atomic.Int64
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for {
				k := next.Add(1) - 1
				if k >= batches {
					return
				}
				due := start.Add(time.Duration(k) * every)
				if d := time.Until(due); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return
					}
				}
				lag := int64(time.Since(due))
				for old := maxLag.Load(); lag > old && !maxLag.CompareAndSwap(old, lag); old = maxLag.Load() {
				}
				n := min(10, total-k*10)
				if err := sendPaced(ctx, client, *queueURL, *prefix, k*10, int(n), r); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				sent.Add(n)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pace: %w", err)
	}
	took := time.Since(start)
	return printJSON(stdout, paceResult{
		Sent: sent.Load(), Seconds: round(took.Seconds(), 3), EventsPerS: round(float64(sent.Load())/took.Seconds(), 1),
		MaxLagMS: round(float64(maxLag.Load())/1e6, 1), Batches: batches,
	})
}

// sendPaced sends n events numbered from first, stamped now.
func sendPaced(ctx context.Context, client *sqs.Client, queueURL, prefix string, first int64, n int, r *rand.Rand) error {
	now := time.Now().UTC().Format(eventTimeLayout)
	bodies := make([]string, n)
	for i := range bodies {
		id := fmt.Sprintf("%s-%08d", prefix, first+int64(i))
		user := 1000 + r.IntN(20000)
		bodies[i] = `{"event":"page_view","id":"` + id + `","timestamp":"` + now + `","user_id":` + strconv.Itoa(user) +
			`,"session_id":"s-` + strconv.Itoa(user) + `-` + strconv.Itoa(r.IntN(50)) + `",` +
			`"page":{"url":"/pricing","referrer":"https://www.google.com/","title":"Pricing"},` +
			`"context":{"ua":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0","geo":{"country":"DE","city":"Berlin"}},` +
			`"perf":{"load_ms":` + strconv.Itoa(50+r.IntN(3000)) + `,"ttfb_ms":` + strconv.Itoa(r.IntN(400)) + `}}`
	}
	return sendLines(ctx, client, queueURL, bodies)
}
