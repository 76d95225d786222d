package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BacklogSampler reads the queue's depth with GetQueueAttributes every
// interval while it runs, and keeps the last reading: Stats returns it, and
// as a Prometheus collector it exports it as the gauge
// wharf_sqs_backlog_messages{state} (visible, in_flight, delayed). Neither
// makes a call, so a scrape or a status page never waits on SQS. A failed
// reading keeps the one before (none before the first success) and is
// reported by Stats. SQS's figures are approximate, as its console's.
type BacklogSampler struct {
	api   SQSAPI
	url   string
	every time.Duration
	now   func() time.Time
	desc  *prometheus.Desc

	mu    sync.Mutex
	stats BacklogStats
}

// BacklogStats is the sampler's last reading.
type BacklogStats struct {
	Depth Backlog   `json:"depth"` // the last successful reading
	At    time.Time `json:"at"`    // when it was read; zero before the first success
	Err   error     `json:"-"`     // the error of the latest reading, nil when it succeeded
}

var _ prometheus.Collector = (*BacklogSampler)(nil)

// backlogTimeout bounds one reading.
const backlogTimeout = 2 * time.Second

// NewBacklogSampler returns the sampler of queueURL's depth, reading every
// interval once Run runs. It makes no call.
func NewBacklogSampler(api SQSAPI, queueURL string, every time.Duration) *BacklogSampler {
	return &BacklogSampler{api: api, url: queueURL, every: every, now: time.Now,
		desc: prometheus.NewDesc("wharf_sqs_backlog_messages",
			"The queue's approximate depth, by state: visible (waiting), in_flight (received, not deleted), delayed; read every 30 s.",
			[]string{"state"}, nil)}
}

// Run reads the depth at once, then every interval, until ctx ends; it
// returns nil then. A failed reading is kept for Stats and tried again at the
// next interval: the depth is for people, and never stops the service.
func (s *BacklogSampler) Run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sample reads the depth once.
func (s *BacklogSampler) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	defer cancel()
	b, err := QueueBacklog(ctx, s.api, s.url)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Err = err
	if err == nil {
		s.stats.Depth, s.stats.At = b, s.now()
	}
}

// Stats returns the last reading.
func (s *BacklogSampler) Stats() BacklogStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Describe sends the gauge's description.
func (s *BacklogSampler) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect sends the last successful reading, if any.
func (s *BacklogSampler) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	if st.At.IsZero() {
		return
	}
	for _, v := range []struct {
		state string
		n     int64
	}{{"visible", st.Depth.Visible}, {"in_flight", st.Depth.InFlight}, {"delayed", st.Depth.Delayed}} {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, float64(v.n), v.state)
	}
}
