package deadletter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// TestWriterLifecycle: NewWriter starts nothing; Run writes a full batch
// without waiting for Close, and counts what it wrote by reason; a second
// Run is an error; Close writes the rest and ends Run.
func TestWriterLifecycle(t *testing.T) {
	ctx := context.Background()
	store := &s3storetest.Mem{}
	w := NewWriter(Config{Prefix: "p/", MaxRecords: 2, MaxAge: time.Hour}, store, zaptest.NewLogger(t), nil)
	var acked atomic.Int64
	ack := func(err error) {
		if err == nil {
			acked.Add(1)
		}
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for _, reason := range []string{"bad_json", "type_mismatch", "bad_json"} {
		if err := w.Add(ctx, Record{Body: "{", Reason: reason, ReceivedAt: time.Now()}, ack); err != nil {
			t.Fatal(err)
		}
	}
	stacktest.Eventually(t, "the full batch of 2 written while running", 10*time.Second, func() bool { return acked.Load() >= 2 })
	select {
	case <-done:
		t.Fatal("Run returned before Close")
	default:
	}
	if err := w.Run(ctx); err == nil {
		t.Error("a second Run returned nil, want an error")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after Close", err)
	}
	st := w.Stats()
	if acked.Load() != 3 || st.Records != 0 || st.Written["bad_json"] != 2 || st.Written["type_mismatch"] != 1 {
		t.Errorf("%d acks, stats %+v; want 3 acked, 2 bad_json and 1 type_mismatch written", acked.Load(), st)
	}
	if err := w.Close(cctx); err != nil {
		t.Errorf("a second Close = %v, want nil", err)
	}
}
