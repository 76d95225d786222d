package backfill

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wharfdata/wharf/schema"
)

// The CPU cost per document of the backfill's own work: BSON to JSON,
// decode, flatten (the batcher's Parquet encoding comes after).
func BenchmarkDocument(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "local", "tables.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	sch, err := schema.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	t := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: bson.NewObjectIDFromTimestamp(t)}, {Key: "event", Value: "page_view"}, {Key: "timestamp", Value: t}, {Key: "user_id", Value: int64(12345)},
		{Key: "session_id", Value: "s-12345-7"},
		{Key: "page", Value: bson.D{{Key: "url", Value: "/pricing"}, {Key: "referrer", Value: "https://www.google.com/"}, {Key: "title", Value: "Page"}}},
		{Key: "context", Value: bson.D{{Key: "ua", Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0"}, {Key: "geo", Value: bson.D{{Key: "country", Value: "DE"}, {Key: "city", Value: "Somewhere"}}}}},
		{Key: "perf", Value: bson.D{{Key: "load_ms", Value: int32(321)}, {Key: "ttfb_ms", Value: int32(45)}}}})
	dec := schema.NewDecoder(sch, schema.DefaultEnvelope())
	var conv converter
	id := bson.Raw(doc).Lookup("_id")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		body, _, err := conv.eventJSON(doc, nil, "")
		if err != nil {
			b.Fatal(err)
		}
		s, _ := idString(id)
		recv, _ := receivedAt(doc, id, t)
		ev, err := dec.Decode(body, s, recv)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dec.Flatten(ev, nil); err != nil {
			b.Fatal(err)
		}
	}
}
