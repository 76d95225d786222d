package deadletter

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wharfdata/wharf/internal/sqsbatch"
)

// Message attributes with which `wharf deadletter replay` re-sends a record,
// so that an event without an id or a time of its own gets the same ones
// as when it was first received (the consumer reads them): a replayed event
// is then deduped like a redelivery, however often it is replayed.
const (
	AttrEventID    = "wharf.event_id"    // the event id it had (the original SQS message id when the event has none)
	AttrReceivedAt = "wharf.received_at" // when it was first received, RFC 3339 with nanoseconds
	// AttrMongoID marks a replayed backfill dead letter with the _id of the
	// Mongo document it was read from. In backfill the event id is the _id
	// (docs/design.md §3), so it wins over any id in the body, and the consumer
	// writes no raw document for it: the document is in Mongo already.
	AttrMongoID = "wharf.mongo_id"
	// AttrSignature signs the other wharf.* attributes and the body (see
	// Sign): the consumer honours them only when it holds, so that no
	// sender but replay can choose an event's id, receive time or _id.
	AttrSignature = "wharf.signature"
)

// AttrPrefix begins every attribute that wharf itself reads.
const AttrPrefix = "wharf."

// Sign returns the signature (hex HMAC-SHA256 under key) of the wharf.*
// attributes in attrs (every one but AttrSignature, by name; other
// attributes are not signed) and of the SHA-256 of body. Each part is
// length-prefixed, so no two sets of attributes and body sign alike.
func Sign(key []byte, attrs map[string]string, body string) string {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		if strings.HasPrefix(k, AttrPrefix) && k != AttrSignature {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "wharf-replay-v1\n%d\n", len(names))
	for _, k := range names {
		fmt.Fprintf(mac, "%d:%s\n%d:%s\n", len(k), k, len(attrs[k]), attrs[k])
	}
	sum := sha256.Sum256([]byte(body))
	fmt.Fprintf(mac, "body:%x\n", sum)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether attrs carry a signature (AttrSignature) of their
// wharf.* attributes and body under key. An empty key verifies nothing.
func Verify(key []byte, attrs map[string]string, body string) bool {
	sig, ok := attrs[AttrSignature]
	if len(key) == 0 || !ok {
		return false
	}
	want := Sign(key, attrs, body)
	return hmac.Equal([]byte(sig), []byte(want))
}

// ReplayDir is the folder of the replay markers under prefix. A marker says
// that the records of one reason in one dead-letter file were re-sent; its
// key is the file's key below Dir, then the reason:
// PREFIX_deadletter/_replayed/dt=YYYY-MM-DD/<id>.jsonl.gz/<reason>. Read
// skips markers (they do not end in .jsonl.gz).
func ReplayDir(prefix string) string { return Dir(prefix) + "_replayed/" }

// ReplayMarker returns the key of the marker for the records of reason in
// the dead-letter file at key.
func ReplayMarker(prefix, key, reason string) string {
	return ReplayDir(prefix) + strings.TrimPrefix(key, Dir(prefix)) + "/" + reason
}

// Replayed returns the keys of every replay marker under prefix.
func Replayed(ctx context.Context, store ObjectStore, prefix string) (map[string]bool, error) {
	keys, err := store.ListKeys(ctx, ReplayDir(prefix))
	if err != nil {
		return nil, fmt.Errorf("list replay markers: %w", err)
	}
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out, nil
}

// MarkReplayed writes the marker for the records of reason in the
// dead-letter file at key, after they were re-sent.
func MarkReplayed(ctx context.Context, store ObjectStore, prefix, key, reason string, records int, queue string, at time.Time) error {
	body, err := json.Marshal(map[string]any{"file": key, "reason": reason, "records": records, "queue": queue, "replayed_at": at.UTC()})
	if err != nil {
		return err
	}
	marker := ReplayMarker(prefix, key, reason)
	if err := store.Put(ctx, marker, bytes.NewReader(body), int64(len(body))); err != nil {
		return fmt.Errorf("write replay marker %s: %w", marker, err)
	}
	return nil
}

// Group is the records of one reason in one dead-letter file: the unit that
// a replay re-sends and marks.
type Group struct {
	File    string
	Day     string // the file's dt= day
	Reason  string
	Records []Record
}

// Groups gathers records (as Read returns them, with their files) by file
// and reason, in the order they first appear.
func Groups(recs []Record) []Group {
	var out []Group
	at := map[[2]string]int{}
	for _, r := range recs {
		k := [2]string{r.File, r.Reason}
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, Group{File: r.File, Day: dayOf(r.File), Reason: r.Reason})
		}
		out[j].Records = append(out[j].Records, r)
	}
	return out
}

// Replayer re-sends dead letters to the queue after a schema fix (`wharf
// deadletter replay`). Each file and reason is sent once: a marker
// (MarkReplayed) records it, and a later Plan skips it unless asked again.
// A replayed event is deduped like any redelivery: by its own id, or, when
// it has none, by the id it was first given, which it carries in a message
// attribute with its first receive time, signed with Key
// (ReplayAttributes). Records are never deleted.
type Replayer struct {
	Store    ObjectStore
	Prefix   string // the S3 prefix wharf writes under
	SQS      sqsbatch.Client
	QueueURL string
	Key      []byte           // deadletter.replay_key, shared with the consumer
	Now      func() time.Time // the markers' time; nil is time.Now
}

// ReplayPlan is what a replay sends, and what it leaves.
type ReplayPlan struct {
	Groups     []Group // to send, in the order of their files
	Already    int     // records of groups replayed before, left
	Other      int     // records of other reasons, left
	Unreadable []Unreadable
}

// Plan reads the dead letters of the days since to until (zero: unbounded)
// and returns the groups of reason ("" is every reason) to replay: those no
// marker names, or with again every one.
func (r *Replayer) Plan(ctx context.Context, since, until time.Time, reason string, again bool) (ReplayPlan, error) {
	var p ReplayPlan
	recs, bad, err := ReadReport(ctx, r.Store, r.Prefix, since, until)
	if err != nil {
		return p, err
	}
	p.Unreadable = bad
	done, err := Replayed(ctx, r.Store, r.Prefix)
	if err != nil {
		return p, err
	}
	for _, g := range Groups(recs) {
		switch {
		case reason != "" && g.Reason != reason:
			p.Other += len(g.Records)
		case done[ReplayMarker(r.Prefix, g.File, g.Reason)] && !again:
			p.Already += len(g.Records)
		default:
			p.Groups = append(p.Groups, g)
		}
	}
	return p, nil
}

// Send re-sends the records of g in batches, retrying only the entries that
// failed, then writes g's marker. It returns how many records were sent and
// how many were not, being larger than an SQS message (or kept without
// their body).
func (r *Replayer) Send(ctx context.Context, g Group) (sent, tooLarge int, err error) {
	var batches sqsbatch.Batches
	send := func(batch []sqsbatch.Entry) error {
		if len(batch) == 0 {
			return nil
		}
		if err := sqsbatch.Send(ctx, r.SQS, r.QueueURL, batch); err != nil {
			return err
		}
		sent += len(batch)
		return nil
	}
	for _, rec := range g.Records {
		e := sqsbatch.Entry{Body: rec.Body, Attributes: ReplayAttributes(rec, r.Key)}
		if e.Size() > sqsbatch.MaxMessage || e.Body == "" {
			tooLarge++
			continue
		}
		if err := send(batches.Add(e)); err != nil {
			return sent, tooLarge, err
		}
	}
	if err := send(batches.Take()); err != nil {
		return sent, tooLarge, err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return sent, tooLarge, MarkReplayed(ctx, r.Store, r.Prefix, g.File, g.Reason, sent, r.QueueURL, now())
}

// ReplayReport is what a replay did, for its last line (Write).
type ReplayReport struct {
	DryRun         bool
	Sent, TooLarge int            // records sent (or, dry, to send), and too large to send
	ByReason       map[string]int // records sent by reason
	Files          map[string]bool
	Already, Other int // records left (ReplayPlan)
}

// Replay sends the groups of p in order (with dryRun it only counts them),
// calls done after each group with the records it sent, and returns what
// it did. It stops at the first group that fails.
func (r *Replayer) Replay(ctx context.Context, p ReplayPlan, dryRun bool, done func(g Group, sent int)) (ReplayReport, error) {
	rep := ReplayReport{DryRun: dryRun, ByReason: map[string]int{}, Files: map[string]bool{}, Already: p.Already, Other: p.Other}
	for _, g := range p.Groups {
		n, big, err := len(g.Records), 0, error(nil)
		if !dryRun {
			n, big, err = r.Send(ctx, g)
		}
		rep.Sent, rep.TooLarge, rep.ByReason[g.Reason] = rep.Sent+n, rep.TooLarge+big, rep.ByReason[g.Reason]+n
		if err != nil {
			return rep, fmt.Errorf("replay %s (%s): %w", g.File, g.Reason, err)
		}
		rep.Files[g.File] = true
		done(g, n)
	}
	return rep, nil
}

// Write writes the report's line, as `wharf deadletter replay` ends.
func (rep ReplayReport) Write(w io.Writer) {
	verb := "replayed"
	if rep.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(w, "%s %d messages from %d files", verb, rep.Sent, len(rep.Files))
	var rs []string
	for _, r := range slices.Sorted(maps.Keys(rep.ByReason)) {
		rs = append(rs, fmt.Sprintf("%s %d", r, rep.ByReason[r]))
	}
	if len(rs) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(rs, ", "))
	}
	fmt.Fprintf(w, "; %d already replayed (--again re-sends them); %d of other reasons", rep.Already, rep.Other)
	if rep.TooLarge > 0 {
		fmt.Fprintf(w, "; %d larger than an SQS message, not sent", rep.TooLarge)
	}
	fmt.Fprintln(w)
}
