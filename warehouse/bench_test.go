package warehouse

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/schema"
)

// BenchmarkLoad measures a load of 4 files of 50,000 rows of the test table
// (15 columns of every type) from S3 into PostgreSQL: read, decode, COPY,
// dedupe, merge and ledger.
func BenchmarkLoad(b *testing.B) {
	const files, perFile = 4, 50_000
	e := newEnv(b, testTables)
	l := e.loader(nil)
	ev := e.sch.Table("ev")
	ctx := context.Background()
	vals := map[string]schema.Value{
		"b": num(1), "i16": num(7), "i32": num(123456), "i64": num(1 << 40), "f32": schema.FloatValue(1.5), "f64": schema.FloatValue(2.25),
		"d_small": num(1999), "d_big": str("123456789012345678901234"), "s": str("some text"),
		"ts": num(base.UnixMicro()), "day": num(20000), "j": str(`{"k":"v","n":[1,2,3]}`),
	}
	var size int64
	total := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for f := 0; f < files; f++ {
			rows := make([]schema.Row, perFile)
			for r := range rows {
				rows[r] = row(ev, fmt.Sprintf("it%d-f%d-r%06d", i, f, r), r, vals)
			}
			var buf bytes.Buffer
			if err := pq.Encode(&buf, ev, rows); err != nil {
				b.Fatal(err)
			}
			size += int64(buf.Len())
			e.putRaw(fmt.Sprintf("%sev/dt=%s/it%d-f%d.parquet", e.prefix, today, i, f), buf.Bytes())
		}
		b.StartTimer()
		res, err := l.Load(ctx, "ev")
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows() != files*perFile {
			b.Fatalf("loaded %d rows, want %d", res.Rows(), files*perFile)
		}
		total += files * perFile
	}
	b.ReportMetric(float64(size)/float64(total), "file-bytes/row")
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
}
