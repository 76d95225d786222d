package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wharfdata/wharf/deadletter"
)

// sqsBatchSender is the SQS call a replay makes.
type sqsBatchSender interface {
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// maxSQSMessage is the largest message SQS takes, body and attributes.
const maxSQSMessage = 1 << 20

// cmdDeadletterReplay re-sends dead-lettered messages to the queue, after a
// schema fix, in batches of ten. Each dead-letter file and reason is sent
// once: a marker under _deadletter/_replayed/ records it, and a later replay
// skips it unless --again. A replayed event is deduped like any redelivery:
// by its own id, or, when it has none, by the id it was first given, which
// the replay carries in a message attribute along with its first receive
// time, signed with deadletter.replay_key (serve ignores unsigned ones).
// Records are never deleted: the dead-letter files stay as they are.
func cmdDeadletterReplay(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("deadletter replay", stderr)
	since := fs.String("since", "", "first day (YYYY-MM-DD) of dead-letter files to replay")
	until := fs.String("until", "", "last day (YYYY-MM-DD) of dead-letter files to replay")
	reason := fs.String("reason", "", "replay only dead letters of this reason, such as type_mismatch (default: every reason)")
	dryRun := fs.Bool("dry-run", false, "print what would be replayed; send and mark nothing")
	again := fs.Bool("again", false, "re-send files and reasons that were replayed before")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := c.validate(need{s3: true}); err != nil {
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
	store := newS3(ac, c)
	recs, bad, err := deadletter.ReadReport(ctx, store, c.S3.Prefix, from, to)
	if err != nil {
		return err
	}
	reportUnreadable(stderr, bad)
	done, err := deadletter.Replayed(ctx, store, c.S3.Prefix)
	if err != nil {
		return err
	}
	var todo []deadletter.Group
	already, other := 0, 0
	for _, g := range deadletter.Groups(recs) {
		switch {
		case *reason != "" && g.Reason != *reason:
			other += len(g.Records)
		case done[deadletter.ReplayMarker(c.S3.Prefix, g.File, g.Reason)] && !*again:
			already += len(g.Records)
		default:
			todo = append(todo, g)
		}
	}

	verb := "replayed"
	if *dryRun {
		verb = "would replay"
	}
	if len(todo) > 0 {
		fmt.Fprintf(stdout, "%-10s  %-20s  %7s  file\n", "day", "reason", "records")
	}
	byReason := map[string]int{}
	sent, tooLarge, nFiles := 0, 0, map[string]bool{}
	summary := func() {
		var rs []string
		for r, n := range byReason {
			rs = append(rs, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(stdout, "%s %d messages from %d files", verb, sent, len(nFiles))
		if len(rs) > 0 {
			fmt.Fprintf(stdout, " (%s)", strings.Join(rs, ", "))
		}
		fmt.Fprintf(stdout, "; %d already replayed (--again re-sends them); %d of other reasons", already, other)
		if tooLarge > 0 {
			fmt.Fprintf(stdout, "; %d larger than an SQS message, not sent", tooLarge)
		}
		fmt.Fprintln(stdout)
	}
	key := []byte(c.Deadletter.ReplayKey)
	if len(todo) > 0 && !*dryRun && len(key) == 0 {
		return badConfig("deadletter.replay_key is required to replay (or WHARF_DEADLETTER_REPLAY_KEY): serve honours the event id, receive time and Mongo _id a replay carries only when they are signed with the key it shares")
	}
	client := newSQS(ac)
	for _, g := range todo {
		n, big := len(g.Records), 0
		if !*dryRun {
			n, big, err = replayGroup(ctx, client, c.SQS.QueueURL, key, g.Records)
			sent += n
			tooLarge += big
			byReason[g.Reason] += n
			if err != nil {
				summary()
				return fmt.Errorf("replay %s (%s): %w", g.File, g.Reason, err)
			}
			if err := deadletter.MarkReplayed(ctx, store, c.S3.Prefix, g.File, g.Reason, n, c.SQS.QueueURL, time.Now()); err != nil {
				summary()
				return err
			}
		} else {
			sent += n
			byReason[g.Reason] += n
		}
		nFiles[g.File] = true
		fmt.Fprintf(stdout, "%-10s  %-20s  %7d  %s\n", g.Day, g.Reason, n, g.File)
	}
	summary()
	return nil
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

// replayEntry is one record as an SQS message.
type replayEntry struct {
	body  string
	attrs map[string]types.MessageAttributeValue
	size  int
}

// replayAttributes returns the attributes a record is re-sent with: the
// event id and first receive time it had (deadletter.AttrEventID and
// AttrReceivedAt), for a backfill dead letter its document's _id
// (AttrMongoID), their signature under key with the body
// (AttrSignature: serve honours them only when it holds), then the
// record's own string attributes but wharf.* ones, in name order, as many
// as SQS allows (ten in all).
func replayAttributes(r deadletter.Record, key []byte) map[string]types.MessageAttributeValue {
	attrs := map[string]types.MessageAttributeValue{}
	str := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if id := r.EventID; id != "" {
		attrs[deadletter.AttrEventID] = str(id)
	} else if r.MessageID != "" {
		attrs[deadletter.AttrEventID] = str(r.MessageID)
	}
	if !r.ReceivedAt.IsZero() {
		attrs[deadletter.AttrReceivedAt] = str(r.ReceivedAt.UTC().Format(time.RFC3339Nano))
	}
	if r.Source == "backfill" && r.EventID != "" {
		attrs[deadletter.AttrMongoID] = str(r.EventID)
	}
	signed := make(map[string]string, len(attrs))
	for k, v := range attrs {
		signed[k] = aws.ToString(v.StringValue)
	}
	attrs[deadletter.AttrSignature] = str(deadletter.Sign(key, signed, r.Body))
	names := make([]string, 0, len(r.Attributes))
	for k, v := range r.Attributes {
		if v != "" && !strings.HasPrefix(k, deadletter.AttrPrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if len(attrs) == 10 {
			break
		}
		attrs[k] = str(r.Attributes[k])
	}
	return attrs
}

// replayGroup sends records in batches of up to ten (and 256 KiB), retrying
// only the entries that failed. It returns how many were sent and how many
// were skipped as larger than an SQS message.
func replayGroup(ctx context.Context, client sqsBatchSender, queueURL string, key []byte, recs []deadletter.Record) (sent, tooLarge int, err error) {
	var batch []replayEntry
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := sendReplayBatch(ctx, client, queueURL, batch)
		if err == nil {
			sent += len(batch)
		}
		batch, size = batch[:0], 0
		return err
	}
	for _, r := range recs {
		e := replayEntry{body: r.Body, attrs: replayAttributes(r, key), size: len(r.Body)}
		for k, v := range e.attrs {
			e.size += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
		}
		if e.size > maxSQSMessage || e.body == "" {
			tooLarge++
			continue
		}
		if len(batch) == 10 || len(batch) > 0 && size+e.size > 256<<10 {
			if err := flush(); err != nil {
				return sent, tooLarge, err
			}
		}
		batch = append(batch, e)
		size += e.size
	}
	return sent, tooLarge, flush()
}

func sendReplayBatch(ctx context.Context, client sqsBatchSender, queueURL string, batch []replayEntry) error {
	pending := make(map[string]replayEntry, len(batch))
	for i, e := range batch {
		pending[strconv.Itoa(i)] = e
	}
	var last error
	for attempt := 0; attempt < 6 && len(pending) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
			}
		}
		entries := make([]types.SendMessageBatchRequestEntry, 0, len(pending))
		for id, e := range pending {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body), MessageAttributes: e.attrs})
		}
		out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		if err != nil {
			last = err
			continue
		}
		for _, ok := range out.Successful {
			delete(pending, aws.ToString(ok.Id))
		}
		for _, f := range out.Failed {
			if f.SenderFault {
				return fmt.Errorf("send: SQS refused a message: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			}
			last = fmt.Errorf("send: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	if len(pending) > 0 {
		if last == nil {
			last = fmt.Errorf("SQS did not answer for them")
		}
		return fmt.Errorf("send: %d messages not sent after retries: %w", len(pending), last)
	}
	return nil
}
