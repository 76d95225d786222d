// Command ferretdb runs FerretDB v1 (embedded) with the SQLite backend for
// the local development stack (see deploy/local/stack-up.sh).
//
// It lives in its own Go module so that the product's go.mod stays clean.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	dir := flag.String("dir", "ferretdb-data", "SQLite data directory (created if missing)")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	if err := run(*listen, *dir, *debug); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(listen, dir string, debug bool) error {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}

	// The SQLite backend wants a "file:" URI whose path ends with "/".
	sqliteURL := "file:" + (&url.URL{Path: abs + "/"}).EscapedPath()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// MongoDBURI blocks until the listener is bound.
	logger.Info("ferretdb listening", "uri", f.MongoDBURI(), "dir", abs, "pid", os.Getpid())

	err = <-done
	logger.Info("ferretdb stopped")
	return err
}
