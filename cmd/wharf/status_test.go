package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/internal/statuspage"
	"github.com/wharfdata/wharf/warehouse"
)

// The page's tests are in internal/statuspage; this one checks serve's
// wiring of it: the recorder scrubs as the log does.

// stats are fixed component snapshots.
type (
	consumerStats ingest.Stats
	batcherStats  batcher.Stats
	deadStats     deadletter.Stats
	backlogStats  ingest.BacklogStats
)

func (s consumerStats) Stats() ingest.Stats       { return ingest.Stats(s) }
func (s batcherStats) Stats() batcher.Stats       { return batcher.Stats(s) }
func (s deadStats) Stats() deadletter.Stats       { return deadletter.Stats(s) }
func (s backlogStats) Stats() ingest.BacklogStats { return ingest.BacklogStats(s) }

// /status hides what the log hides: a known secret (here an AWS secret key,
// which matches no password pattern) is scrubbed from every error and
// message the page shows, exactly as scrubWriter scrubs it from a log line.
func TestStatusScrubsLikeLogs(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	secrets := secretForms([]string{secret})
	leak := errors.New("signature mismatch for " + secret)
	for _, tc := range []struct {
		name string
		set  func(pc *statuspage.Config, log *zap.Logger)
	}{
		{"a logged error", func(_ *statuspage.Config, log *zap.Logger) {
			log.Warn("flush failed", zap.String("table", "orders"), zap.Error(leak))
		}},
		{"a logged message", func(_ *statuspage.Config, log *zap.Logger) {
			log.Error("flush failed: " + leak.Error())
		}},
		{"a logged file", func(_ *statuspage.Config, log *zap.Logger) {
			log.Warn("put failed", zap.String("file", "s3://b/"+secret))
		}},
		{"a load error", func(pc *statuspage.Config, _ *zap.Logger) {
			pc.Recorder.OnLoad(warehouse.Load{Table: "orders", At: time.Now(), Err: leak})
		}},
		{"the ledger error", func(pc *statuspage.Config, _ *zap.Logger) {
			pc.Ledger = func(context.Context, time.Time) ([]warehouse.LoadedMinute, error) { return nil, leak }
		}},
		{"the queue error", func(pc *statuspage.Config, _ *zap.Logger) {
			pc.Backlog = backlogStats{Err: leak}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := statuspage.NewRecorder(func(v string) string { return scrub(v, secrets) }) // as newService
			pc := statuspage.Config{
				Tables: []string{"orders"}, Target: time.Minute, Bucket: time.Minute,
				Ledger:   func(context.Context, time.Time) ([]warehouse.LoadedMinute, error) { return nil, nil },
				Consumer: consumerStats{}, Batcher: batcherStats{}, DeadLetters: deadStats{}, Backlog: backlogStats{At: time.Now()},
				Recorder: rec,
			}
			var logged strings.Builder
			log := rec.Wrap(zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(scrubWriter{&logged, secrets}), zap.WarnLevel)))
			tc.set(&pc, log)
			if strings.Contains(logged.String(), secret) {
				t.Fatalf("the log line shows the secret: %s", logged.String())
			}
			page := statuspage.New(pc)
			for _, accept := range []string{"application/json", "text/html"} {
				w := httptest.NewRecorder()
				r := httptest.NewRequest("GET", "/status", nil)
				r.Header.Set("Accept", accept)
				page.ServeHTTP(w, r)
				body := w.Body.String()
				if strings.Contains(body, secret) {
					t.Errorf("%s page shows the secret", accept)
				}
				if accept == "application/json" && !strings.Contains(body, "signature mismatch for xxxxx") && !strings.Contains(body, "s3://b/xxxxx") {
					t.Errorf("%s page does not show the scrubbed error:\n%s", accept, body)
				}
			}
		})
	}
}
