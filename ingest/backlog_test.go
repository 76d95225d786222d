package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharfdata/wharf/internal/stacktest"
)

// depthSQS answers GetQueueAttributes with its depth, or its error.
type depthSQS struct {
	SQSAPI
	calls   int
	visible string
	err     error
}

func (d *depthSQS) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	d.calls++
	if d.err != nil {
		return nil, d.err
	}
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
		"ApproximateNumberOfMessages": d.visible, "ApproximateNumberOfMessagesNotVisible": "7", "ApproximateNumberOfMessagesDelayed": "0"}}, nil
}

// TestBacklogSampler: the queue's depth is a gauge by state and a Stats
// snapshot, read when the sampler samples (never on a scrape), and a failed
// reading keeps the last one and is reported.
func TestBacklogSampler(t *testing.T) {
	api := &depthSQS{visible: "1200"}
	s := NewBacklogSampler(api, "q", 30*time.Second)
	now := time.Unix(1_000_000, 0)
	s.now = func() time.Time { return now }
	want := func(visible string) string {
		return `# HELP wharf_sqs_backlog_messages The queue's approximate depth, by state: visible (waiting), in_flight (received, not deleted), delayed; read every 30 s.
# TYPE wharf_sqs_backlog_messages gauge
wharf_sqs_backlog_messages{state="delayed"} 0
wharf_sqs_backlog_messages{state="in_flight"} 7
wharf_sqs_backlog_messages{state="visible"} ` + visible + "\n"
	}
	if n := testutil.CollectAndCount(s); n != 0 || api.calls != 0 {
		t.Errorf("before the first reading: %d series, %d calls; want none", n, api.calls)
	}
	ctx := context.Background()
	s.sample(ctx)
	if err := testutil.CollectAndCompare(s, strings.NewReader(want("1200"))); err != nil {
		t.Fatal(err)
	}
	api.visible = "5"
	if err := testutil.CollectAndCompare(s, strings.NewReader(want("1200"))); err != nil || api.calls != 1 {
		t.Errorf("between readings: %v, %d calls; want the last reading, 1 call", err, api.calls)
	}
	now = now.Add(30 * time.Second)
	s.sample(ctx)
	if err := testutil.CollectAndCompare(s, strings.NewReader(want("5"))); err != nil {
		t.Errorf("the next reading: %v", err)
	}
	if st := s.Stats(); st.Depth != (Backlog{Visible: 5, InFlight: 7}) || !st.At.Equal(now) || st.Err != nil {
		t.Errorf("stats %+v", st)
	}
	api.err = errors.New("throttled")
	s.sample(ctx)
	if err := testutil.CollectAndCompare(s, strings.NewReader(want("5"))); err != nil {
		t.Errorf("a failed reading: %v; want the last one kept", err)
	}
	if st := s.Stats(); st.Depth.Visible != 5 || !st.At.Equal(now) || st.Err == nil {
		t.Errorf("stats after a failed reading %+v, want the last reading and the error", st)
	}
}

// Run reads at once and ends with its context.
func TestBacklogSamplerRun(t *testing.T) {
	api := &depthSQS{visible: "3"}
	s := NewBacklogSampler(api, "q", time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stacktest.Eventually(t, "the first reading", 10*time.Second, func() bool { return !s.Stats().At.IsZero() })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v, want nil once its context ends", err)
	}
}
