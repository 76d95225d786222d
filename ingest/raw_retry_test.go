package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"
)

// flakyRaw fails its first calls with err, then stores everything.
type flakyRaw struct {
	fails int
	err   error
	calls int
}

func (f *flakyRaw) Store(_ context.Context, _ string, docs []bson.Raw) ([]error, error) {
	f.calls++
	if f.calls <= f.fails {
		return nil, f.err
	}
	return make([]error, len(docs)), nil
}

// An unreachable Mongo is retried while the messages stay held; a write it
// refuses is returned at once, so that those messages are redelivered (and
// reach the queue's dead-letter queue after maxReceiveCount).
func TestStoreRawRetriesOnlyUnavailable(t *testing.T) {
	docs := []bson.Raw{{5, 0, 0, 0, 0}} // an empty document
	for _, tc := range []struct {
		name      string
		err       error
		wantCalls int
		wantErr   bool
	}{
		{"unavailable", fmt.Errorf("insert into c: %w: server selection timeout", ErrUnavailable), 3, false},
		{"refused", errors.New("insert into c: unauthorized"), 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := &flakyRaw{fails: 2, err: tc.err}
			c := &Consumer{raw: raw, log: zap.NewNop(), m: newMetrics(nil)}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			perDoc, err := c.storeRaw(ctx, "c", docs, nil)
			if (err != nil) != tc.wantErr || raw.calls != tc.wantCalls {
				t.Fatalf("err %v after %d calls; want error %v after %d", err, raw.calls, tc.wantErr, tc.wantCalls)
			}
			if err == nil && (len(perDoc) != 1 || perDoc[0] != nil) {
				t.Fatalf("perDoc %v", perDoc)
			}
		})
	}

	// Shutting down ends the retries.
	raw := &flakyRaw{fails: 1 << 30, err: ErrUnavailable}
	c := &Consumer{raw: raw, log: zap.NewNop(), m: newMetrics(nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.storeRaw(ctx, "c", docs, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after ctx ended: %v, want ErrUnavailable", err)
	}
}
