package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wharfdata/wharf/deadletter"
)

func cmdDeadletter(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "replay" {
		return cmdDeadletterReplay(ctx, args[1:], env, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "list" {
		return usageError("deadletter: want list or replay")
	}
	fs, cfgPath := flags("deadletter list", stderr)
	since := fs.String("since", "", "first day (YYYY-MM-DD) to list")
	samples := fs.Int("samples", 2, "examples per day and reason")
	asJSON := fs.Bool("json", false, "print JSON lines")
	c, err := setup(fs, cfgPath, args[1:], env, need{s3: true})
	if err != nil {
		return err
	}
	from, err := dayFlag("--since", *since)
	if err != nil {
		return err
	}
	ac, err := awsConfig(ctx, env)
	if err != nil {
		return err
	}
	recs, bad, err := deadletter.ReadReport(ctx, newS3(ac, c), c.S3.Prefix, from, time.Time{})
	if err != nil {
		return err
	}
	reportUnreadable(stderr, bad)
	deadletter.WriteSummaries(stdout, deadletter.Summarize(recs, *samples), *asJSON)
	return nil
}

// cmdDeadletterReplay re-sends dead letters to the queue after a schema fix
// (deadletter.Replayer): each file and reason once, unless --again.
func cmdDeadletterReplay(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("deadletter replay", stderr)
	since := fs.String("since", "", "first day (YYYY-MM-DD) of dead-letter files to replay")
	until := fs.String("until", "", "last day (YYYY-MM-DD) of dead-letter files to replay")
	reason := fs.String("reason", "", "replay only dead letters of this reason, such as type_mismatch (default: every reason)")
	dryRun := fs.Bool("dry-run", false, "print what would be replayed; send and mark nothing")
	again := fs.Bool("again", false, "re-send files and reasons that were replayed before")
	c, err := setup(fs, cfgPath, args, env, need{s3: true})
	if err != nil {
		return err
	}
	if c.SQS.QueueURL == "" {
		return badConfig("sqs.queue_url is required (or WHARF_SQS_QUEUE_URL)")
	}
	from, err := dayFlag("--since", *since)
	if err != nil {
		return err
	}
	to, err := dayFlag("--until", *until)
	if err != nil {
		return err
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return usageError("--until %s is before --since %s", *until, *since)
	}
	ac, err := awsConfig(ctx, env)
	if err != nil {
		return err
	}
	r := &deadletter.Replayer{Store: newS3(ac, c), Prefix: c.S3.Prefix, SQS: newSQS(ac), QueueURL: c.SQS.QueueURL, Key: []byte(c.Deadletter.ReplayKey)}
	plan, err := r.Plan(ctx, from, to, *reason, *again)
	if err != nil {
		return err
	}
	reportUnreadable(stderr, plan.Unreadable)
	if len(plan.Groups) > 0 && !*dryRun && len(r.Key) == 0 {
		return badConfig("deadletter.replay_key is required to replay (or WHARF_DEADLETTER_REPLAY_KEY): serve honours the event id, receive time and Mongo _id a replay carries only when they are signed with the key it shares")
	}
	if len(plan.Groups) > 0 {
		fmt.Fprintf(stdout, "%-10s  %-20s  %7s  file\n", "day", "reason", "records")
	}
	rep, err := r.Replay(ctx, plan, *dryRun, func(g deadletter.Group, n int) {
		fmt.Fprintf(stdout, "%-10s  %-20s  %7d  %s\n", g.Day, g.Reason, n, g.File)
	})
	rep.Write(stdout)
	return err
}

// reportUnreadable names each dead-letter record that could not be read;
// the command goes on with the others.
func reportUnreadable(w io.Writer, bad []deadletter.Unreadable) {
	for _, u := range bad {
		fmt.Fprintf(w, "unreadable dead letter: %s\n", u)
	}
	if len(bad) > 0 {
		fmt.Fprintf(w, "%d dead letters could not be read; the rest were\n", len(bad))
	}
}

func dayFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return t, usageError("%s: %q is not a day YYYY-MM-DD", name, v)
	}
	return t, nil
}
