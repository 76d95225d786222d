package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// TestBacklogCollector: the queue's depth is a gauge by state, read at most
// once per TTL, and a failed reading keeps the last one.
func TestBacklogCollector(t *testing.T) {
	api := &depthSQS{visible: "1200"}
	c := NewBacklogCollector(api, "q", 30*time.Second)
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	want := func(visible string) string {
		return `# HELP wharf_sqs_backlog_messages The queue's approximate depth, by state: visible (waiting), in_flight (received, not deleted), delayed; read at most once per 30 s.
# TYPE wharf_sqs_backlog_messages gauge
wharf_sqs_backlog_messages{state="delayed"} 0
wharf_sqs_backlog_messages{state="in_flight"} 7
wharf_sqs_backlog_messages{state="visible"} ` + visible + "\n"
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("1200"))); err != nil {
		t.Fatal(err)
	}
	api.visible = "5"
	now = now.Add(10 * time.Second)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("1200"))); err != nil || api.calls != 1 {
		t.Errorf("within the TTL: %v, %d calls; want the cached reading, 1 call", err, api.calls)
	}
	now = now.Add(30 * time.Second)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("5"))); err != nil {
		t.Errorf("after the TTL: %v", err)
	}
	api.err = errors.New("throttled")
	now = now.Add(time.Minute)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("5"))); err != nil {
		t.Errorf("a failed reading: %v; want the last one kept", err)
	}
	if n := testutil.CollectAndCount(NewBacklogCollector(&depthSQS{err: errors.New("down")}, "q", time.Second)); n != 0 {
		t.Errorf("no reading yet: %d series, want none", n)
	}
}
