package deadletter

import (
	"context"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// memStore is an ObjectStore in memory.
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (m *memStore) Put(_ context.Context, key string, body io.Reader, _ int64) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[key] = b
	return nil
}

func (m *memStore) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objs[key], nil
}

func (m *memStore) ListKeys(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Records are grouped by file and reason; a marker names one group, Read
// never mistakes a marker for a dead-letter file, and Replayed finds it.
func TestReplayMarkers(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	w := NewWriter(Config{Prefix: "p/", MaxAge: time.Hour}, store, zaptest.NewLogger(t), nil)
	acks := 0
	for i, reason := range []string{"type_mismatch", "bad_json", "type_mismatch"} {
		w.Add(Record{Body: strings.Repeat("x", i+1), Reason: reason, ReceivedAt: time.Now()}, func(err error) {
			if err == nil {
				acks++
			}
		})
	}
	if err := w.Close(ctx); err != nil || acks != 3 {
		t.Fatalf("close: %v, %d acks", err, acks)
	}
	recs, files, err := Read(ctx, store, "p/", time.Time{}, time.Time{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("read: %d records, %v", len(recs), err)
	}
	groups := Groups(recs, files)
	if len(groups) != 2 || groups[0].Reason != "type_mismatch" || len(groups[0].Records) != 2 || groups[1].Reason != "bad_json" {
		t.Fatalf("groups: %+v", groups)
	}
	if groups[0].Day != time.Now().UTC().Format("2006-01-02") {
		t.Errorf("group day %q", groups[0].Day)
	}
	if err := MarkReplayed(ctx, store, "p/", groups[0].File, groups[0].Reason, 2, "q", time.Now()); err != nil {
		t.Fatal(err)
	}
	marker := ReplayMarker("p/", groups[0].File, "type_mismatch")
	if !strings.HasPrefix(marker, "p/_deadletter/_replayed/dt=") || !strings.HasSuffix(marker, ".jsonl.gz/type_mismatch") {
		t.Fatalf("marker key %s", marker)
	}
	done, err := Replayed(ctx, store, "p/")
	if err != nil || len(done) != 1 || !done[marker] || done[ReplayMarker("p/", groups[1].File, "bad_json")] {
		t.Fatalf("replayed: %v, %v", done, err)
	}
	if recs, _, err := Read(ctx, store, "p/", time.Time{}, time.Time{}); err != nil || len(recs) != 3 {
		t.Fatalf("read after marking: %d records, %v", len(recs), err)
	}
}
