package warehouse

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	files       *prometheus.CounterVec // table
	rows        *prometheus.CounterVec // table
	duplicates  *prometheus.CounterVec // table
	pending     *prometheus.GaugeVec   // table
	seconds     prometheus.Histogram
	errors      *prometheus.CounterVec   // table
	lag         *prometheus.HistogramVec // table
	newest      *prometheus.GaugeVec     // table
	late        *prometheus.CounterVec   // table
	quarantined *prometheus.CounterVec   // table

	newestMu   sync.Mutex
	newestSeen map[string]float64 // the newest event time set on newest, per table
}

// newMetrics builds the loader's metrics and registers them on reg, when reg
// is not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_load_files_total", Help: "S3 files merged into the warehouse and recorded in the ledger.",
		}, []string{"table"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_load_rows_total", Help: "Rows added to warehouse tables.",
		}, []string{"table"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_load_duplicates_total", Help: "Rows read from files but not added: a duplicate in the batch or already in the table.",
		}, []string{"table"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_pending_files", Help: "S3 files found not yet loaded, as of the last listing, less those loaded since.",
		}, []string{"table"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wharf_load_duration_seconds", Help: "Time to merge one batch of files (one transaction), retries included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_load_errors_total", Help: "Table loads that ended in an error, by table; the files stay pending for the next load.",
		}, []string{"table"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wharf_load_lag_seconds", Help: "End-to-end lag, event time to loaded: per merged batch, commit time minus the batch's oldest event_time (an upper bound for each of its rows).",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400, 604800},
		}, []string{"table"}),
		newest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_load_newest_event_timestamp_seconds", Help: "The newest event_time this process has loaded into the table, as Unix seconds; time() minus it is the table's freshness.",
		}, []string{"table"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_load_late_files_total", Help: "Files found by a reconciliation in a day partition before the table's watermark, not in the ledger, and merged.",
		}, []string{"table"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_load_quarantined_total", Help: "Files set aside because they cannot load (not Parquet, a newer schema, a value the warehouse refuses); see wharf load.",
		}, []string{"table"}),
		newestSeen: map[string]float64{},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.files, m.rows, m.duplicates, m.pending, m.seconds, m.errors, m.lag, m.newest, m.late, m.quarantined} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register warehouse metrics: %w", err)
		}
	}
	return m, nil
}
