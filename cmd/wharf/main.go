// Command wharf moves tracking events from SQS into a warehouse. See the
// README for the commands and the configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], osEnv{}, os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: wharf <command> [flags]

commands:
  serve       -c wharf.yaml [--http :8080]   the always-on service
  load        -c wharf.yaml [--table T]      load pending S3 files into the warehouse now, once
  schema      check|plan|apply|ddl -c wharf.yaml   validate the file; show / apply the DDL against the live warehouse; print the DDL
  schema      infer -c wharf.yaml --collection C [--sample N] [-o FILE]   write a schema file from a random sample
  schema      docs|jsonschema -c wharf.yaml [-o …]   a data dictionary (--format markdown|html); a JSON Schema per event type
  flatten     -c wharf.yaml < event.json      print the rows events become, per table, as JSON lines
  send        -c wharf.yaml < events.jsonl    send JSON lines to the queue in batches of 10
  deadletter  list -c wharf.yaml [--since D] [--samples N]   dead letters by day and reason
  deadletter  replay -c wharf.yaml [--since D] [--until D] [--reason R] [--dry-run] [--again]
              re-send dead letters to the queue after a schema fix (once per file and reason unless --again)
  healthcheck [--url http://127.0.0.1:8080/healthz]   exit 0 if a running serve is alive (the container's health check)
  backfill    -c wharf.yaml --table T [--since TIME|warehouse] [--until TIME] [--filter JSON]
              [--shard i/N] [--workers K] [--job NAME]   stream Mongo history through the same path, resumably
  audit       -c wharf.yaml --table T --since TIME [--until TIME] [--repair]   hourly counts, Mongo vs warehouse
  version     (or --version)   wharf's version, commit and Go version

exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config
`

// exitError carries an exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageError(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, env Env, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := dispatch(ctx, args, env, stdin, stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "wharf:", scrub(err.Error(), envSecrets(env)))
	var ce *configError
	var ee *exitError
	switch {
	case errors.As(err, &ce):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

func dispatch(ctx context.Context, args []string, env Env, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, env, stdout, stderr)
	case "load":
		return cmdLoad(ctx, rest, env, stdout, stderr)
	case "schema":
		return cmdSchema(ctx, rest, env, stdout, stderr)
	case "flatten":
		return cmdFlatten(ctx, rest, env, stdin, stdout, stderr)
	case "send":
		return cmdSend(ctx, rest, env, stdin, stdout, stderr)
	case "backfill":
		return cmdBackfill(ctx, rest, env, stdout, stderr)
	case "audit":
		return cmdAudit(ctx, rest, env, stdout, stderr)
	case "deadletter":
		return cmdDeadletter(ctx, rest, env, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stdout, stderr)
	case "version", "--version":
		return cmdVersion(rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", cmd)
}

// flags returns a flag set with -c/--config.
func flags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("wharf "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("c", "", "configuration file (wharf.yaml)")
	fs.StringVar(cfg, "config", "", "configuration file (same as -c)")
	return fs, cfg
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
