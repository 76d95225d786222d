package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/statuspage"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// serveFlags are serve's flags beyond -c.
type serveFlags struct {
	http      string        // address of the HTTP endpoints; empty: none
	noLoad    bool          // run no warehouse loader
	freshness time.Duration // /status's freshness target; 0: derived from the config
}

func cmdServe(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("serve", stderr)
	var f serveFlags
	fs.StringVar(&f.http, "http", ":8080", "address of the HTTP endpoints (/healthz, /readyz, /metrics, /status); empty to disable")
	fs.BoolVar(&f.noLoad, "no-load", false, "do not run the warehouse loader in this process")
	fs.DurationVar(&f.freshness, "freshness-target", 0, "how long after a table's last load /status calls it late (default: 2 × warehouse.load_interval + batch.max_age)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := c.validate(need{sqs: true, s3: true, warehouse: !f.noLoad, mongo: true}); err != nil {
		return err
	}
	log := newLogger(c, stderr)
	defer log.Sync()
	s, err := newService(ctx, c, f, env, log)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// service is `wharf serve`: its long-running components, each built by a New
// that does no I/O and starts nothing, run and stopped by run.
type service struct {
	log          *zap.Logger
	drainTimeout time.Duration
	tables       int    // in the schema, as logged
	queue        string // the queue's URL, as logged

	cons    *ingest.Consumer
	bat     *batcher.Batcher
	dl      *deadletter.Writer
	backlog *ingest.BacklogSampler
	loader  *warehouse.Loader // nil with --no-load
	beat    *loaderBeat       // the loader's heartbeat; nil with --no-load
	http    *httpServer       // nil without --http
	health  *health
	ready   atomic.Bool

	closers []func() // the stores' connections, closed last, newest first
}

// run runs every component until ctx ends (the first SIGTERM or SIGINT) or
// one of them fails, then stops them in the order of docs/design.md §11
// (One lifecycle), within drain_timeout of that moment. It returns the first component's
// error, or nil after a stop asked for.
func (s *service) run(ctx context.Context) error {
	defer s.closeStores()
	// The components outlive ctx: the drain needs them.
	bg := context.WithoutCancel(ctx)
	g, failed := errgroup.WithContext(bg)
	polling, stopPolling := context.WithCancel(failed)
	defer stopPolling()
	loading, stopLoading := context.WithCancel(failed)
	defer stopLoading()
	polled := make(chan struct{})
	g.Go(func() error { defer close(polled); return s.cons.Run(polling) })
	g.Go(func() error { return s.bat.Run(bg) }) // until s.bat.Close
	g.Go(func() error { return s.dl.Run(bg) })  // until s.dl.Close
	g.Go(func() error { return s.backlog.Run(loading) })
	if s.loader != nil {
		g.Go(func() error { return s.beat.run(loading, s.loader.Run) })
	}
	if s.http != nil {
		g.Go(s.http.run) // until s.http.close
	}
	s.ready.Store(true)
	s.log.Info("serving", zap.Int("tables", s.tables), zap.String("queue", s.queue))

	select {
	case <-ctx.Done():
	case <-failed.Done():
		s.log.Error("stopping: a component failed", zap.Error(context.Cause(failed)))
	}
	// The drain budget runs from the signal (or the failure).
	start := time.Now()
	s.ready.Store(false)
	s.health.draining.Store(true)
	defer exitOnSecondSignal(s.log)()
	drain, cancel := context.WithDeadline(bg, start.Add(s.drainTimeout))
	defer cancel()
	// The flush leaves the consumer a fifth of the budget (at most 5 s) for
	// the last deletes and for releasing what could not be flushed.
	flush, cancelFlush := context.WithDeadline(drain, start.Add(s.drainTimeout-min(5*time.Second, s.drainTimeout/5)))
	defer cancelFlush()
	s.log.Info("draining", zap.Duration("drain_timeout", s.drainTimeout))

	// The shutdown order (docs/design.md §11): a message is deleted only
	// once its rows are in S3 or its dead letter is written, and released
	// otherwise. 1. Stop receiving; 2. drain the pollers into the batcher
	// and the dead-letter writer.
	stopPolling()
	s.wait(drain, polled, "pollers")
	// 3. Flush the batcher and the dead letters; close the batcher, which
	// nacks the rows it gave up on.
	s.warn(s.bat.Flush(flush, batcher.ReasonShutdown), "flush at shutdown incomplete")
	s.warn(s.dl.Close(flush), "dead letters not all written at shutdown")
	s.warn(s.bat.Close(drain), "batcher close")
	// 4. Delete the acked messages; release the rest.
	s.warn(s.cons.Close(drain), "drain incomplete")
	// 5. Stop the loader, the backlog sampler and the HTTP endpoints.
	stopLoading()
	if s.http != nil {
		s.warn(s.http.close(drain), "http shutdown")
	}
	err := s.waitGroup(drain, g)
	// 6. Close the stores.
	s.closeStores()
	s.log.Info("stopped", zap.Duration("drain", time.Since(start)))
	return err
}

// wait waits until done is closed or ctx ends, saying which.
func (s *service) wait(ctx context.Context, done <-chan struct{}, what string) {
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn(what+" not stopped within drain_timeout", zap.Error(context.Cause(ctx)))
	}
}

// waitGroup returns g's error once every component has returned, or nil
// when ctx ends first (what is still running ends with the process).
func (s *service) waitGroup(ctx context.Context, g *errgroup.Group) error {
	var err error
	done := make(chan struct{})
	go func() { defer close(done); err = g.Wait() }()
	s.wait(ctx, done, "components")
	select {
	case <-done:
		return err
	default:
		return nil
	}
}

// warn logs err, if any, as a warning saying what.
func (s *service) warn(err error, what string) {
	if err != nil {
		s.log.Warn(what, zap.Error(err))
	}
}

// closeStores closes the stores' connections, once.
func (s *service) closeStores() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// exitOnSecondSignal makes a second SIGTERM or SIGINT exit at once (held
// messages are then only redelivered), until the returned stop is called.
func exitOnSecondSignal(log *zap.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: exiting now; held messages will be redelivered")
			os.Exit(130)
		case <-done:
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

// newService connects the stores and wires the components. On error, what
// it connected is closed.
func newService(ctx context.Context, c *Config, f serveFlags, env Env, log *zap.Logger) (s *service, err error) {
	// The status page keeps this process's recent warnings, errors and loads.
	rec := statuspage.NewRecorder(func(v string) string { return scrub(v, c.secrets) })
	log = rec.Wrap(log)
	sch, err := loadSchema(c)
	if err != nil {
		return nil, err
	}
	// Crash tests only: WHARF_FAULT makes this process SIGKILL itself at
	// chosen points, in a build with -tags wharffault (fault_on.go).
	faultAt, err := faultHook(env, log)
	if err != nil {
		return nil, err
	}
	s = &service{log: log, drainTimeout: time.Duration(c.DrainTimeout), tables: len(sch.All()), queue: c.SQS.QueueURL}
	svc := s // a return on error sets s to nil before this runs
	defer func() {
		if err != nil {
			svc.closeStores()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoGauge())
	st, err := s.connect(ctx, c, env, f.noLoad)
	if err != nil {
		return nil, err
	}
	if !f.noLoad {
		if err := s.newLoader(ctx, c, st, sch, rec, faultAt, reg); err != nil {
			return nil, err
		}
	}
	if err := s.newIngest(c, st, sch, faultAt, reg); err != nil {
		return nil, err
	}
	s.health = &health{now: time.Now, beats: healthChecks(c, s.cons, s.bat, s.beat)}
	if f.http != "" {
		page := s.statusPage(c, f, st, sch, rec)
		if s.http, err = listenHTTP(f.http, reg, &s.ready, s.health, page, log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// stores are serve's connections.
type stores struct {
	s3  *s3store.Store
	sqs *sqs.Client
	// visibility is the queue's visibility timeout, read while connecting:
	// a queue that cannot be read stops serve before anything runs.
	visibility time.Duration
	raw        ingest.RawStore // nil: raw writes disabled
	pool       *pgxpool.Pool   // nil with --no-load
}

// connect opens the stores: AWS's configuration, S3 and SQS clients (and
// reads the queue's visibility timeout), Mongo (when configured), and the
// warehouse's pool (unless noLoad).
func (s *service) connect(ctx context.Context, c *Config, env Env, noLoad bool) (stores, error) {
	var st stores
	ac, err := awsConfig(ctx, env)
	if err != nil {
		return st, err
	}
	ac.Logger = sdkLogger{s.log.With(zap.String("component", "aws"))}
	st.s3 = newS3(ac, c)
	// The consumer's own HTTP client: see ingest.ClientOptions.
	st.sqs = sqs.NewFromConfig(ac, ingest.ClientOptions(c.SQS.Pollers))
	if c.Mongo.URI != "" {
		mc, err := newMongo(ctx, c)
		if err != nil {
			return st, err
		}
		s.closers = append(s.closers, func() {
			// Bounded: with Mongo unreachable, the driver's endSessions
			// would otherwise outlive ECS's stop timeout.
			dctx, cancel := context.WithTimeout(context.Background(), mongoDisconnectTimeout)
			defer cancel()
			if err := mc.Disconnect(dctx); err != nil {
				s.log.Warn("mongo disconnect", zap.Error(err))
			}
		})
		st.raw = ingest.NewMongoStore(mc.Database(c.Mongo.Database)).WithWriteConcern(mongoWriteConcern(c.Mongo.URI))
	} else {
		s.log.Warn("mongo.uri is not set: raw events are not written to Mongo")
	}
	if st.visibility, err = ingest.QueueVisibility(ctx, st.sqs, c.SQS.QueueURL); err != nil { // after a bad mongo.uri's exit 2
		return st, err
	}
	if !noLoad {
		pool, err := newPool(ctx, c)
		if err != nil {
			return st, err
		}
		s.closers = append(s.closers, pool.Close)
		st.pool = pool
	}
	return st, nil
}

// mongoDisconnectTimeout bounds closing the Mongo client at exit, after the
// drain: its sessions end on the server by themselves.
const mongoDisconnectTimeout = 2 * time.Second

// newLoader builds the warehouse loader and its heartbeat, and creates what
// the warehouse lacks (new tables, new columns) so that files of the schema
// this process writes can load. A warehouse that is down does not stop
// ingestion: files wait in S3.
func (s *service) newLoader(ctx context.Context, c *Config, st stores, sch *schema.Schema, rec *statuspage.Recorder, faultAt func(fault.Point), reg prometheus.Registerer) error {
	wc := c.warehouseConfig()
	s.beat = &loaderBeat{now: time.Now}
	wc.OnLoad = s.beat.onLoad(rec.OnLoad)
	wc.Fault = faultAt
	loader, err := warehouse.New(wc, st.pool, beatingStore{st.s3, s.beat.beat}, sch, s.log, reg)
	if err != nil {
		return badConfig("%v", err)
	}
	s.loader = loader
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := loader.Apply(actx); err != nil {
		s.log.Warn("schema apply at start failed; the loader retries loads every interval", zap.Error(err))
	}
	return nil
}

// newIngest builds the batcher, the dead-letter writer, the consumer that
// feeds them, and the queue's backlog sampler.
func (s *service) newIngest(c *Config, st stores, sch *schema.Schema, faultAt func(fault.Point), reg *prometheus.Registry) error {
	bc := c.batcherConfig()
	bc.Fault = faultAt
	bat, err := batcher.New(bc, st.s3, s.log, reg)
	if err != nil {
		return badConfig("%v", err)
	}
	s.bat = bat
	s.dl = deadletter.NewWriter(deadletter.Config{Prefix: c.S3.Prefix}, st.s3, s.log, reg)
	ic := c.ingestConfig()
	ic.Visibility = st.visibility
	ic.Fault = faultAt
	ic.Replay = ingest.NewReplayAuth([]byte(c.Deadletter.ReplayKey), s.log, reg)
	if s.cons, err = ingest.New(ic, st.sqs, sch, c.envelope(), st.raw, bat, s.dl, s.log, reg); err != nil {
		return err
	}
	s.backlog = ingest.NewBacklogSampler(st.sqs, c.SQS.QueueURL, 30*time.Second)
	reg.MustRegister(s.backlog)
	return nil
}

// statusPage builds /status over the components' snapshots.
func (s *service) statusPage(c *Config, f serveFlags, st stores, sch *schema.Schema, rec *statuspage.Recorder) *statuspage.Page {
	target := f.freshness
	if target <= 0 {
		target = 2*time.Duration(c.Warehouse.LoadInterval) + time.Duration(c.Batch.MaxAge)
	}
	pc := statuspage.Config{
		Tables: tableNames(sch), Target: target, Bucket: max(time.Minute, time.Duration(c.Warehouse.LoadInterval)).Truncate(time.Minute),
		Consumer: s.cons, Batcher: s.bat, DeadLetters: s.dl, Backlog: s.backlog, Recorder: rec,
	}
	if s.loader != nil {
		pc.Loader = s.loader
		pc.Ledger = func(ctx context.Context, since time.Time) ([]warehouse.LoadedMinute, error) {
			return warehouse.LedgerSummary(ctx, st.pool, c.warehouseConfig(), pc.Tables, since)
		}
	}
	return statuspage.New(pc)
}

// httpServer serves the health, readiness, metrics and status endpoints on
// a listener opened while wiring (so that a bad --http is a config error).
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

// listenHTTP opens addr and routes the endpoints; run serves them.
func listenHTTP(addr string, reg *prometheus.Registry, ready *atomic.Bool, health, status http.Handler, log *zap.Logger) (*httpServer, error) {
	mux := http.NewServeMux()
	mux.Handle("/healthz", health)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/status", status)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, badConfig("--http %s: %v", addr, err)
	}
	log.Info("http listening", zap.String("addr", ln.Addr().String()))
	return &httpServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}, nil
}

// run serves until close; it returns nil then, and the error that stopped
// it otherwise.
func (h *httpServer) run() error {
	if err := h.srv.Serve(h.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// close ends the requests under way until ctx ends, then drops them.
func (h *httpServer) close(ctx context.Context) error {
	if err := h.srv.Shutdown(ctx); err != nil {
		return errors.Join(err, h.srv.Close())
	}
	return nil
}

// tableNames lists the schema's tables, parents and children, in file order.
func tableNames(sch *schema.Schema) []string {
	var names []string
	for _, t := range sch.All() {
		names = append(names, t.Name)
	}
	return names
}
