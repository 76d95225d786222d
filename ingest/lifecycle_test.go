package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
)

// runWriter runs a dead-letter writer until the test ends (or until the test
// closes it), as serve does.
func runWriter(t *testing.T, w *deadletter.Writer) {
	t.Helper()
	runUntilClosed(t, w.Run, w.Close)
}

// runBatcher runs a batcher until the test ends (or until the test closes
// it), as serve does.
func runBatcher(t *testing.T, b *batcher.Batcher) {
	t.Helper()
	runUntilClosed(t, b.Run, b.Close)
}

func runUntilClosed(t *testing.T, run, closeFn func(context.Context) error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closeFn(ctx)
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
