package batcher

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/wharfdata/wharf/schema"
)

// nopStore discards what it is given: not a fake of S3 (it keeps nothing,
// so that the benchmark does not hold every file it writes), so it is not
// held to the store's contract (s3storetest.Run).
type nopStore struct{}

func (nopStore) Put(_ context.Context, _ string, body io.Reader, _ int64) error {
	_, err := io.Copy(io.Discard, body)
	return err
}

// BenchmarkAdd measures rows/s through Add with a store that discards the
// files: Add's own cost plus, once the caps are reached, the Parquet
// encoding it waits for. Each message is a parent row and two child rows.
func BenchmarkAdd(b *testing.B) {
	ts := testTables(b)
	// Rows are only read by the batcher, so a few messages can be added
	// again and again; building them is not what is measured.
	msgs := make([]*schema.Rows, 1024)
	for i := range msgs {
		msgs[i] = ts.click(fmt.Sprintf("%016d", i), 2)
	}
	for _, par := range []bool{false, true} {
		b.Run(fmt.Sprintf("parallel=%v", par), func(b *testing.B) {
			bt, err := New(DefaultConfig(), nopStore{}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			run(b, bt)
			ctx := context.Background()
			ack := func(error) {}
			b.ReportAllocs()
			b.ResetTimer()
			if par {
				b.RunParallel(func(pb *testing.PB) {
					for i := 0; pb.Next(); i++ {
						if err := bt.Add(ctx, msgs[i%len(msgs)], ack); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for i := range b.N {
					if err := bt.Add(ctx, msgs[i%len(msgs)], ack); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := bt.Flush(ctx, ReasonShutdown); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(3*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
