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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/batcher"
	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/ingest"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// mongoDisconnectTimeout bounds closing the Mongo client at exit, after the
// drain: its sessions end on the server by themselves.
const mongoDisconnectTimeout = 2 * time.Second

func cmdServe(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("serve", stderr)
	httpAddr := fs.String("http", ":8080", "address of the HTTP endpoints (/healthz, /readyz, /metrics, /status); empty to disable")
	noLoad := fs.Bool("no-load", false, "do not run the warehouse loader in this process")
	freshness := fs.Duration("freshness-target", 0, "how long after a table's last load /status calls it late (default: 2 × warehouse.load_interval + batch.max_age)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := c.validate(need{sqs: true, s3: true, warehouse: !*noLoad, mongo: true}); err != nil {
		return err
	}
	log := newLogger(c, stderr)
	defer log.Sync()
	// The status page keeps this process's recent warnings, errors and loads.
	rec := newStatusRecorder(c.secrets)
	log = rec.wrap(log)
	sch, err := loadSchema(c)
	if err != nil {
		return err
	}
	// Crash tests only: WHARF_FAULT makes this process SIGKILL itself at
	// chosen points, in a build with -tags wharffault (fault_on.go).
	faultAt, err := faultHook(env, log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoGauge())

	// Background work outlives the signal context: the drain needs it.
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()

	ac, err := awsConfig(bg, env)
	if err != nil {
		return err
	}
	ac.Logger = sdkLogger{log.With(zap.String("component", "aws"))}
	store := newS3(ac, c)
	// The consumer's own HTTP client: see ingest.ClientOptions.
	sqsClient := sqs.NewFromConfig(ac, ingest.ClientOptions(c.SQS.Pollers))
	reg.MustRegister(ingest.NewBacklogCollector(sqsClient, c.SQS.QueueURL, 30*time.Second))

	var raw ingest.RawStore
	if c.Mongo.URI != "" {
		mc, err := newMongo(bg, c)
		if err != nil {
			return err
		}
		defer func() {
			// Bounded: with Mongo unreachable, the driver's endSessions
			// would otherwise outlive ECS's stop timeout.
			dctx, cancel := context.WithTimeout(context.Background(), mongoDisconnectTimeout)
			defer cancel()
			if err := mc.Disconnect(dctx); err != nil {
				log.Warn("mongo disconnect", zap.Error(err))
			}
		}()
		raw = ingest.NewMongoStore(mc.Database(c.Mongo.Database))
	} else {
		log.Warn("mongo.uri is not set: raw events are not written to Mongo")
	}

	var loader *warehouse.Loader
	var lb *loaderBeat
	var ledger func(context.Context, time.Time) ([]warehouse.LoadedMinute, error)
	if !*noLoad {
		pool, err := newPool(bg, c)
		if err != nil {
			return err
		}
		defer pool.Close()
		ledger = func(ctx context.Context, since time.Time) ([]warehouse.LoadedMinute, error) {
			return warehouse.LedgerSummary(ctx, pool, c.warehouseConfig(), tableNames(sch), since)
		}
		wc := c.warehouseConfig()
		lb = &loaderBeat{now: time.Now}
		wc.OnLoad = lb.onLoad(rec.onLoad)
		wc.Fault = faultAt
		loader, err = warehouse.New(wc, pool, beatingStore{store, lb.beat}, sch, log, reg)
		if err != nil {
			return badConfig("%v", err)
		}
		// Create what is missing (new tables, new columns) so that files of
		// the schema this process writes can load. A warehouse that is down
		// does not stop ingestion: files wait in S3.
		actx, cancel := context.WithTimeout(bg, 30*time.Second)
		if err := loader.Apply(actx); err != nil {
			log.Warn("schema apply at start failed; the loader retries loads every interval", zap.Error(err))
		}
		cancel()
	}

	bc := c.batcherConfig()
	bc.Fault = faultAt
	bat, err := batcher.New(bc, store, log, reg)
	if err != nil {
		return badConfig("%v", err)
	}
	dl := deadletter.NewWriter(deadletter.Config{Prefix: c.S3.Prefix}, store, log, reg)
	ic := c.ingestConfig()
	ic.Fault = faultAt
	ic.Replay = ingest.NewReplayAuth([]byte(c.Deadletter.ReplayKey), log, reg)
	cons, err := ingest.New(bg, ic, sqsClient, sch, c.envelope(), raw, bat, dl, log, reg)
	if err != nil {
		return err
	}

	var ready atomic.Bool
	health := &health{now: time.Now, beats: healthChecks(c, cons, bat, lb)}
	if *httpAddr != "" {
		target := *freshness
		if target <= 0 {
			target = 2*time.Duration(c.Warehouse.LoadInterval) + time.Duration(c.Batch.MaxAge)
		}
		status := &statusSource{
			tables: tableNames(sch), target: target, bucket: max(time.Minute, time.Duration(c.Warehouse.LoadInterval)).Truncate(time.Minute),
			ledger: ledger, gather: reg, rec: rec, now: time.Now,
			backlog: func(ctx context.Context) (ingest.Backlog, error) {
				return ingest.QueueBacklog(ctx, sqsClient, c.SQS.QueueURL)
			},
			local: func() (batcher.Stats, int) { return bat.Stats(), cons.Held() },
		}
		if loader != nil {
			status.quarantine = func(ctx context.Context) ([]warehouse.QuarantinedFile, error) { return loader.Quarantined(ctx) }
		}
		srv, err := serveHTTP(*httpAddr, reg, &ready, health, status, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	ready.Store(true)
	log.Info("serving", zap.Int("tables", len(sch.All())), zap.String("queue", c.SQS.QueueURL))

	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(bg)
	if loader != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lb.run(loadCtx, loader.Run)
		}()
	}

	// Poll until the first SIGTERM or SIGINT. The drain budget runs from the
	// signal: the grace a long poll under way gets counts against it.
	var signalledAt atomic.Int64
	context.AfterFunc(ctx, func() { signalledAt.Store(time.Now().UnixNano()) })
	cons.Run(ctx)
	ready.Store(false)
	health.draining.Store(true)

	// A second signal exits at once: held messages are only redelivered.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		log.Warn("second signal: exiting now; held messages will be redelivered")
		os.Exit(130)
	}()

	drainTimeout := time.Duration(c.DrainTimeout)
	log.Info("draining", zap.Duration("drain_timeout", drainTimeout))
	start := time.Now()
	if at := signalledAt.Load(); at != 0 {
		start = time.Unix(0, at)
	}
	drainCtx, cancel := context.WithDeadline(bg, start.Add(drainTimeout))
	defer cancel()
	// The flush leaves the consumer a fifth of the budget (at most 5 s) for
	// the last deletes and for releasing what could not be flushed.
	flushCtx, cancelFlush := context.WithDeadline(drainCtx, start.Add(drainTimeout-min(5*time.Second, drainTimeout/5)))
	defer cancelFlush()
	if err := bat.Flush(flushCtx, batcher.ReasonShutdown); err != nil {
		log.Warn("flush at shutdown incomplete", zap.Error(err))
	}
	if err := dl.Close(flushCtx); err != nil {
		log.Warn("dead letters not all written at shutdown", zap.Error(err))
	}
	// Rows Close gives up on are acked with an error: the consumer releases
	// their messages in its drain.
	bat.Close()
	cons.Drain(drainCtx)
	stopLoad()
	wg.Wait()
	log.Info("stopped", zap.Duration("drain", time.Since(start)))
	return nil
}

// serveHTTP serves the health, readiness, metrics and status endpoints.
func serveHTTP(addr string, reg *prometheus.Registry, ready *atomic.Bool, health, status http.Handler, log *zap.Logger) (*http.Server, error) {
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
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	log.Info("http listening", zap.String("addr", ln.Addr().String()))
	return srv, nil
}

// tableNames lists the schema's tables, parents and children, in file order.
func tableNames(sch *schema.Schema) []string {
	var names []string
	for _, t := range sch.All() {
		names = append(names, t.Name)
	}
	return names
}
