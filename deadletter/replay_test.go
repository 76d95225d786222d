package deadletter

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
)

// Records are grouped by file and reason; a marker names one group, Read
// never mistakes a marker for a dead-letter file, and Replayed finds it.
func TestReplayMarkers(t *testing.T) {
	ctx := context.Background()
	store := &s3storetest.Mem{}
	w := NewWriter(Config{Prefix: "p/", MaxAge: time.Hour}, store, zaptest.NewLogger(t), nil)
	acks := 0
	for i, reason := range []string{"type_mismatch", "bad_json", "type_mismatch"} {
		w.Add(ctx, Record{Body: strings.Repeat("x", i+1), Reason: reason, ReceivedAt: time.Now()}, func(err error) {
			if err == nil {
				acks++
			}
		})
	}
	if err := w.Close(ctx); err != nil || acks != 3 {
		t.Fatalf("close: %v, %d acks", err, acks)
	}
	recs, err := Read(ctx, store, "p/", time.Time{}, time.Time{})
	if err != nil || len(recs) != 3 {
		t.Fatalf("read: %d records, %v", len(recs), err)
	}
	groups := Groups(recs)
	if len(groups) != 2 || groups[0].Reason != "type_mismatch" || len(groups[0].Records) != 2 || groups[1].Reason != "bad_json" {
		t.Fatalf("groups: %+v", groups)
	}
	// The day the writer wrote them (its clock is the real one): the test
	// may cross midnight, so either day around the write is right.
	if now := time.Now().UTC(); groups[0].Day != now.Format(time.DateOnly) && groups[0].Day != now.Add(-time.Hour).Format(time.DateOnly) {
		t.Errorf("group day %q, want %s (the write's day)", groups[0].Day, now.Format(time.DateOnly))
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
	if recs, err := Read(ctx, store, "p/", time.Time{}, time.Time{}); err != nil || len(recs) != 3 {
		t.Fatalf("read after marking: %d records, %v", len(recs), err)
	}
}

// gzLines gzips lines, each followed by a newline; cut drops that many bytes
// from the end of the gzip stream.
func gzLines(t *testing.T, cut int, lines ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	for _, l := range lines {
		if _, err := io.WriteString(zw, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()[:b.Len()-cut]
}

func recordLine(t *testing.T, r Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// One record larger than any line buffer (a 5 MiB backfill document), a
// line that is not a record, and a file cut short do not make the rest
// unreadable: every readable record is returned, each unreadable one is
// reported with its file and line.
func TestReadLargeAndBrokenRecords(t *testing.T) {
	big := Record{Body: `{"blob":"` + strings.Repeat("y", 5<<20) + `"}`, Reason: "too_large", Source: "backfill"}
	small := func(i int) Record { return Record{Body: fmt.Sprintf(`{"i":%d}`, i), Reason: "bad_json"} }
	for _, tc := range []struct {
		name     string
		files    map[string][]byte
		wantBody []string // bodies read, in order (the big one as "big")
		wantBad  []string // file:line of the unreadable records
	}{
		{
			name:     "a record over 4 MiB",
			files:    map[string][]byte{"p/_deadletter/dt=2026-11-20/a.jsonl.gz": gzLines(t, 0, recordLine(t, small(1)), recordLine(t, big), recordLine(t, small(2)))},
			wantBody: []string{`{"i":1}`, "big", `{"i":2}`},
		},
		{
			name:     "a line that is not a record",
			files:    map[string][]byte{"p/_deadletter/dt=2026-11-20/a.jsonl.gz": gzLines(t, 0, recordLine(t, small(1)), `{"body": "cut off`, recordLine(t, small(2)))},
			wantBody: []string{`{"i":1}`, `{"i":2}`},
			wantBad:  []string{"p/_deadletter/dt=2026-11-20/a.jsonl.gz:2"},
		},
		{
			name: "a file cut short, then a good one",
			files: map[string][]byte{
				"p/_deadletter/dt=2026-11-20/a.jsonl.gz": gzLines(t, 1000, recordLine(t, small(1)), recordLine(t, big)),
				"p/_deadletter/dt=2026-11-20/b.jsonl.gz": gzLines(t, 0, recordLine(t, small(3))),
			},
			wantBody: []string{`{"i":1}`, `{"i":3}`},
			wantBad:  []string{"p/_deadletter/dt=2026-11-20/a.jsonl.gz:2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := s3storetest.NewMem(tc.files)
			recs, err := Read(context.Background(), store, "p/", time.Time{}, time.Time{})
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var got []string
			for _, r := range recs {
				if _, ok := tc.files[r.File]; !ok {
					t.Errorf("record %.20q names file %q, not the one it was read from", r.Body, r.File)
				}
				if r.Body == big.Body {
					got = append(got, "big")
					continue
				}
				got = append(got, r.Body)
			}
			if !slices.Equal(got, tc.wantBody) {
				t.Fatalf("records %q, want %q", got, tc.wantBody)
			}
			_, bad, err := ReadReport(context.Background(), store, "p/", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			var where []string
			for _, u := range bad {
				where = append(where, fmt.Sprintf("%s:%d", u.File, u.Line))
				if u.Err == nil {
					t.Errorf("%s: no error", u)
				}
			}
			if !slices.Equal(where, tc.wantBad) {
				t.Fatalf("unreadable %v, want %v", bad, tc.wantBad)
			}
		})
	}
}
