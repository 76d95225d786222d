package warehouse

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	files      *prometheus.CounterVec // table
	rows       *prometheus.CounterVec // table
	duplicates *prometheus.CounterVec // table
	pending    *prometheus.GaugeVec   // table
	seconds    prometheus.Histogram
	errors     prometheus.Counter
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
			Name: "wharf_files_pending", Help: "S3 files found not yet loaded, as of the last listing, less those loaded since.",
		}, []string{"table"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wharf_load_seconds", Help: "Time to merge one batch of files (one transaction), retries included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_load_errors_total", Help: "Table loads that ended in an error; the files stay pending for the next load.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.files, m.rows, m.duplicates, m.pending, m.seconds, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register warehouse metrics: %w", err)
		}
	}
	return m, nil
}
