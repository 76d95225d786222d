package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BacklogCollector exports the queue's depth as the gauge
// wharf_sqs_backlog_messages{state} (visible, in_flight, delayed), read with
// GetQueueAttributes at most once per TTL: a scrape in between gets the last
// reading, and a scrape whose reading fails gets the one before (none before
// the first success). SQS's figures are approximate, as its console's.
type BacklogCollector struct {
	api  SQSAPI
	url  string
	ttl  time.Duration
	now  func() time.Time
	desc *prometheus.Desc

	mu   sync.Mutex
	last Backlog
	at   time.Time
	ok   bool
}

var _ prometheus.Collector = (*BacklogCollector)(nil)

// backlogTimeout bounds one reading, so a slow SQS cannot stall a scrape.
const backlogTimeout = 2 * time.Second

// NewBacklogCollector returns the collector of queueURL's depth.
func NewBacklogCollector(api SQSAPI, queueURL string, ttl time.Duration) *BacklogCollector {
	return &BacklogCollector{api: api, url: queueURL, ttl: ttl, now: time.Now,
		desc: prometheus.NewDesc("wharf_sqs_backlog_messages",
			"The queue's approximate depth, by state: visible (waiting), in_flight (received, not deleted), delayed; read at most once per 30 s.",
			[]string{"state"}, nil)}
}

// Describe sends the gauge's description.
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reads the depth when the last reading is older than the TTL, and
// sends the latest reading.
func (c *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || !c.now().Before(c.at.Add(c.ttl)) {
		ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
		b, err := QueueBacklog(ctx, c.api, c.url)
		cancel()
		if err == nil {
			c.last, c.at, c.ok = b, c.now(), true
		}
	}
	if !c.ok {
		return
	}
	for _, s := range []struct {
		state string
		n     int64
	}{{"visible", c.last.Visible}, {"in_flight", c.last.InFlight}, {"delayed", c.last.Delayed}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.n), s.state)
	}
}
