package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/stacktest"
)

func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }

// closeWriter stops a dead-letter writer's loop at the end of a test.
func closeWriter(t *testing.T, dl *deadletter.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dl.Close(ctx); err != nil {
		t.Errorf("close the dead-letter writer: %v", err)
	}
}
