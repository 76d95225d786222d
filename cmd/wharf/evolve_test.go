package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// TestServeSchemaEvolution changes the schema under a running deployment:
// files written before a column is added still load (NULL in it; the value
// the old schema did not map is in _extras), and files written after it
// carry it. The first serve does not load (--no-load), so the old files are
// loaded only after the change, by the restarted serve.
func TestServeSchemaEvolution(t *testing.T) {
	e := newE2E(t)
	src := filepath.Join(stacktest.RepoRoot(), "deploy", "local")
	for _, f := range []string{"wharf.yaml", "tables.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.cfg = filepath.Join(e.dir, "wharf.yaml")
	e.run(nil, "schema", "apply", "-c", e.cfg)

	events := func(prefix string, n int) []byte {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, `{"event":"page_view","id":"%s-%d","timestamp":"2026-11-25T12:00:%02dZ","user_id":%d,"page":{"url":"/p/%d"},"campaign":"%s"}`+"\n", prefix, i, i%60, i, i, prefix)
		}
		return b.Bytes()
	}

	// 1. The old schema: serve without the loader, so the files stay in S3.
	old := e.cmd("serve", "-c", e.cfg, "--http", "", "--no-load")
	var oldLog bytes.Buffer
	old.Stdout, old.Stderr = &oldLog, &oldLog
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Process.Kill() })
	e.run(events("old", 40), "send", "-c", e.cfg)
	e.waitQueueDrained()
	old.Process.Signal(syscall.SIGTERM) // the drain flushes every buffer to S3
	if err := old.Wait(); err != nil {
		t.Fatalf("serve --no-load after SIGTERM: %v\n%s", err, tail(oldLog.String(), 3000))
	}
	store := s3store.New(e.st.S3(t), e.st.Bucket)
	files, err := store.ListKeys(context.Background(), e.prefix+"page_views/")
	if err != nil || len(files) == 0 {
		t.Fatalf("no page_views file in S3 after the first serve: %v", err)
	}
	if n := e.counts()["page_views"]; n != 0 {
		t.Fatalf("page_views has %d rows before the loader ran", n)
	}

	// 2. Add a column, apply, restart serve with the loader.
	tables := filepath.Join(e.dir, "tables.yaml")
	b, _ := os.ReadFile(tables)
	v2 := strings.Replace(string(b), "      - {name: load_ms,    path: perf.load_ms,   type: integer}\n",
		"      - {name: load_ms,    path: perf.load_ms,   type: integer}\n      - {name: campaign,   path: campaign,       type: varchar(32)}\n", 1)
	if v2 == string(b) {
		t.Fatal("could not add the column to the demo's tables.yaml")
	}
	if err := os.WriteFile(tables, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.run(nil, "schema", "plan", "-c", e.cfg); !strings.Contains(out, `ADD COLUMN IF NOT EXISTS "campaign" varchar(32)`) {
		t.Fatalf("plan:\n%s", out)
	}
	e.run(nil, "schema", "apply", "-c", e.cfg)
	e.serve()
	e.run(events("new", 30), "send", "-c", e.cfg)
	stacktest.WaitFor(2*time.Minute, func() bool { return e.counts()["page_views"] >= 70 })
	rows, err := e.pool.Query(context.Background(), fmt.Sprintf(`SELECT split_part(event_id, '-', 1), coalesce(campaign, 'NULL'), coalesce(_extras->>'campaign', 'NULL'), count(*)
		FROM %q.page_views GROUP BY 1, 2, 3 ORDER BY 1`, e.schema))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var batch, col, extra string
		var n int
		rows.Scan(&batch, &col, &extra, &n)
		got = append(got, fmt.Sprintf("%s campaign=%s extras=%s rows=%d", batch, col, extra, n))
	}
	want := []string{"new campaign=new extras=NULL rows=30", "old campaign=NULL extras=old rows=40"}
	if !slices.Equal(got, want) {
		t.Errorf("page_views after the change:\n got %q\nwant %q", got, want)
	}
}

// waitQueueDrained waits until the deployment's queue has no message
// waiting (every one has been received).
func (e *e2e) waitQueueDrained() {
	e.t.Helper()
	var queue string
	for _, kv := range e.env {
		if v, ok := strings.CutPrefix(kv, "WHARF_SQS_QUEUE_URL="); ok {
			queue = v
		}
	}
	client := e.st.SQS(e.t)
	stacktest.Eventually(e.t, "no message waiting in the queue", time.Minute, func() bool {
		out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &queue,
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
		return err == nil && out.Attributes["ApproximateNumberOfMessages"] == "0"
	})
}
