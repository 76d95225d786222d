package batcher

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// TestS3 writes a few hundred flattened events to the local S3 (fauxqs) and
// reads the files back: the keys follow docs/design.md §5 and every row is there.
func TestS3(t *testing.T) {
	st := stacktest.Get(t)
	store := s3store.New(st.S3(t), st.Bucket)
	prefix := st.Prefix()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		objs, _ := store.List(context.Background(), prefix, "")
		for _, o := range objs {
			store.Delete(context.Background(), o.Key)
		}
	})

	ts := testTables(t)
	cfg := DefaultConfig()
	cfg.Prefix = prefix
	cfg.MaxRows = 100 // several files per table
	b, err := New(cfg, store, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, b)

	dec := schema.NewDecoder(ts.s, schema.DefaultEnvelope())
	const events = 300
	acks := make(chan error, events)
	wantTags := 0
	for i := range events {
		body := fmt.Sprintf(`{"event":"click","id":"e%d","timestamp":"2024-05-01T10:00:00Z","user_id":%d,"page":"/p/%d","tags":["a","b"%s]}`,
			i, i, i, map[bool]string{true: `,"c"`}[i%2 == 0])
		ev, err := dec.Decode([]byte(body), "m", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var rows schema.Rows
		if err := dec.FlattenInto(ev, &rows); err != nil {
			t.Fatal(err)
		}
		wantTags += rows.Len() - 1
		if err := b.Add(ctx, &rows, func(err error) { acks <- err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx, ReasonShutdown); err != nil {
		t.Fatal(err)
	}
	for range events {
		if err := <-acks; err != nil {
			t.Fatalf("ack: %v", err)
		}
	}

	objs, err := store.List(ctx, prefix, "")
	if err != nil {
		t.Fatal(err)
	}
	keyRE := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `(clicks|clicks_tags)/dt=(\d{4}-\d\d-\d\d)/[0-9A-Z]{26}\.parquet$`)
	today := time.Now().UTC().Format(time.DateOnly)
	rows := map[string]int64{}
	files := map[string]int{}
	for _, o := range objs {
		m := keyRE.FindStringSubmatch(o.Key)
		if m == nil {
			t.Fatalf("key %q does not match %s", o.Key, keyRE)
		}
		if m[2] != today && m[2] != time.Now().Add(-time.Hour).UTC().Format(time.DateOnly) {
			t.Errorf("key %q: dt is not today (UTC)", o.Key)
		}
		body, err := store.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		rows[m[1]] += f.NumRows()
		files[m[1]]++
	}
	if rows["clicks"] != events || rows["clicks_tags"] != int64(wantTags) {
		t.Errorf("rows in S3 = %v, want clicks %d, clicks_tags %d", rows, events, wantTags)
	}
	if files["clicks"] < 3 || files["clicks_tags"] < 7 {
		t.Errorf("files = %v, want at least 3 and 7 (max_rows 100)", files)
	}
}
