// Command toxiproxy runs Shopify's Toxiproxy (the fault-injecting TCP proxy)
// for wharf's outage tests (cmd/wharf/outage_test.go): each test starts its
// own instance, puts a proxy in front of S3, MongoDB or PostgreSQL, and cuts
// it while events flow.
//
// It lives in its own Go module so that the product's go.mod stays clean.
// Unlike toxiproxy's own server command it listens on any free port
// (-listen 127.0.0.1:0) and prints the address it got as its first line,
// "listening ADDR", so that parallel tests never race for a port.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address of toxiproxy's HTTP API")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()
	if err := run(*listen, *debug); err != nil {
		fmt.Fprintln(os.Stderr, "toxiproxy:", err)
		os.Exit(1)
	}
}

func run(listen string, debug bool) error {
	level := zerolog.InfoLevel
	if debug {
		level = zerolog.DebugLevel
	}
	logger := zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: api.Routes(), ReadHeaderTimeout: 15 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sigs:
		return srv.Close()
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
