package batcher

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	flushes       *prometheus.CounterVec // table, reason
	flushFailures *prometheus.CounterVec // table
	filesWritten  *prometheus.CounterVec // table
	bytesWritten  *prometheus.CounterVec // table
	rowsWritten   *prometheus.CounterVec // table
	rowsBuffered  *prometheus.GaugeVec   // table
	bytesBuffered *prometheus.GaugeVec   // table
	messagesHeld  prometheus.Gauge
	flushSeconds  prometheus.Histogram
	putRetries    prometheus.Counter
}

// newMetrics builds the batcher's metrics and registers them on reg, when reg
// is not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_flushes_total", Help: "Buffer flushes started, by table and reason (rows, bytes, age, in_flight, shutdown, manual).",
		}, []string{"table", "reason"}),
		flushFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_flush_failures_total", Help: "Flushes that ended without a file in S3 (encoding error, or abandoned at close); their acks got the error.",
		}, []string{"table"}),
		filesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_written_files_total", Help: "Parquet files put to S3.",
		}, []string{"table"}),
		bytesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_written_bytes_total", Help: "Bytes of Parquet put to S3.",
		}, []string{"table"}),
		rowsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_written_rows_total", Help: "Rows put to S3 in Parquet files.",
		}, []string{"table"}),
		rowsBuffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_buffered_rows", Help: "Rows held in memory, by table: in its buffer and in its flushes not yet put.",
		}, []string{"table"}),
		bytesBuffered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_buffered_bytes", Help: "Bytes held in memory, by table, as counted against batch.max_bytes (summed over tables): its buffer and its flushes not yet put.",
		}, []string{"table"}),
		messagesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_held_messages", Help: "Messages whose ack has not been called yet, as counted against sqs.max_in_flight.",
		}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wharf_flush_duration_seconds", Help: "Time to encode and put one file, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 15),
		}),
		putRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_put_retries_total", Help: "S3 put attempts that failed and were retried.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.flushes, m.flushFailures, m.filesWritten, m.bytesWritten, m.rowsWritten,
		m.rowsBuffered, m.bytesBuffered, m.messagesHeld, m.flushSeconds, m.putRetries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register batcher metrics: %w", err)
		}
	}
	return m, nil
}
