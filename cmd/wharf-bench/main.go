// Command wharf-bench is the helper of `make bench` (deploy/local/bench.sh):
// the pieces of the end-to-end benchmarks that are not wharf itself.
//
//	mkqueue    create a fresh SQS queue and print its URL
//	bare       the baseline: receive → InsertMany → delete, nothing else
//	watch      wait until `wharf serve` has loaded every row; times, SQS calls, RSS, CPU
//	pace       send events at a steady rate, each stamped with its send time
//	feed       send a file of events while keeping the queue's backlog bounded
//	freshness  per-row latency from event time to S3 and to the warehouse
//	cleanup    delete a queue, an S3 prefix, a Mongo database, a warehouse schema
//
// Each subcommand prints one JSON object on stdout for bench.sh to read, and
// takes every address as a flag; AWS access uses the SDK's default chain
// (AWS_ENDPOINT_URL for the local stack).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "wharf-bench:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: wharf-bench <command> [flags]   (each command has -h)

commands: mkqueue, bare, watch, pace, feed, freshness, cleanup
`

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"mkqueue":   cmdMkqueue,
		"bare":      cmdBare,
		"watch":     cmdWatch,
		"pace":      cmdPace,
		"feed":      cmdFeed,
		"freshness": cmdFreshness,
		"cleanup":   cmdCleanup,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// newFlags returns a flag set that reports its errors on stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wharf-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// printJSON writes v as one JSON line.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
