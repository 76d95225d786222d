package deadletter

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap/zaptest"

	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
)

// ReplayAttributes carries the first id and receive time, signed with the
// replay key, then the message's own string attributes but wharf.* ones, at
// most ten in all.
func TestReplayAttributes(t *testing.T) {
	key := []byte("a-replay-key-of-some-length")
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	r := Record{MessageID: "m-1", ReceivedAt: at, Attributes: map[string]string{"wharf.event_id": "spoof", "empty": ""}}
	for i := 0; i < 12; i++ {
		r.Attributes[fmt.Sprintf("a%02d", i)] = "v"
	}
	got := ReplayAttributes(r, key)
	if len(got) != 10 {
		t.Fatalf("%d attributes, want 10", len(got))
	}
	str := func(k string) string {
		v, ok := got[k]
		if !ok || *v.DataType != "String" {
			return "<missing>"
		}
		return *v.StringValue
	}
	if str(AttrEventID) != "m-1" || str(AttrReceivedAt) != "2026-11-25T10:00:00.123456Z" {
		t.Fatalf("id %q, time %q", str(AttrEventID), str(AttrReceivedAt))
	}
	for _, k := range []string{"a00", "a06"} {
		if str(k) != "v" {
			t.Errorf("attribute %s missing", k)
		}
	}
	plain := map[string]string{}
	for k, v := range got {
		plain[k] = *v.StringValue
	}
	if !Verify(key, plain, r.Body) {
		t.Error("the replay's signature does not verify")
	}
	if Verify([]byte("another-key-of-some-length"), plain, r.Body) {
		t.Error("the signature verifies under another key")
	}
	if _, ok := got["empty"]; ok {
		t.Error("an empty attribute was sent")
	}
	r.EventID = "e-1"
	if got := ReplayAttributes(r, key)[AttrEventID]; *got.StringValue != "e-1" {
		t.Errorf("event id attribute %q, want the event's own id", *got.StringValue)
	}
	if _, ok := ReplayAttributes(r, key)[AttrMongoID]; ok {
		t.Error("a live dead letter carries a Mongo _id")
	}
	r.Source = "backfill"
	if got, ok := ReplayAttributes(r, key)[AttrMongoID]; !ok || *got.StringValue != "e-1" {
		t.Errorf("a backfill dead letter's _id attribute: %v", got.StringValue)
	}
}

// What replay writes, the consumer reads back: a message sent with
// ReplayAttributes passes Authenticate under the same key and gives the
// record's id, receive time and (for a backfill dead letter) _id; under
// another key, or none, every wharf.* attribute is dropped, with why.
func TestReplayWireRoundTrip(t *testing.T) {
	key := []byte("a-replay-key-of-some-length")
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	r := Record{Body: `{"a":1}`, EventID: "doc-1", MessageID: "m-1", ReceivedAt: at, Source: "backfill", Attributes: map[string]string{"team": "growth"}}
	msg := func(attrs map[string]types.MessageAttributeValue) types.Message {
		return types.Message{MessageId: aws.String("new-message"), Body: aws.String(r.Body), MessageAttributes: attrs}
	}
	got, why, dropped := Authenticate(key, msg(ReplayAttributes(r, key)))
	if why != "" || dropped != nil {
		t.Fatalf("a signed replay was not trusted: %s %v", why, dropped)
	}
	if id, recv := Origin(got, time.Now()); id != "doc-1" || !recv.Equal(at) {
		t.Errorf("origin %q %s, want doc-1 %s", id, recv, at)
	}
	if MongoID(got) != "doc-1" {
		t.Errorf("mongo id %q", MongoID(got))
	}
	for _, tc := range []struct {
		name string
		key  []byte
		msg  types.Message
		want string
	}{
		{"another key", []byte("another-key-of-some-length"), msg(ReplayAttributes(r, key)), IgnoredBadSignature},
		{"no key", nil, msg(ReplayAttributes(r, key)), IgnoredNoKey},
		{"unsigned", key, msg(map[string]types.MessageAttributeValue{AttrEventID: stringAttr("forged")}), IgnoredUnsigned},
	} {
		n := len(tc.msg.MessageAttributes)
		got, why, dropped := Authenticate(tc.key, tc.msg)
		if why != tc.want || len(dropped) == 0 {
			t.Errorf("%s: ignored %q (%v), want %q", tc.name, why, dropped, tc.want)
		}
		if id, _ := Origin(got, time.Now()); id != "new-message" || MongoID(got) != "" {
			t.Errorf("%s: origin %q, mongo id %q: the dropped attributes still count", tc.name, id, MongoID(got))
		}
		if _, ok := got.MessageAttributes["team"]; ok != (tc.name != "unsigned") {
			t.Errorf("%s: the message's own attributes: %v", tc.name, got.MessageAttributes)
		}
		if len(tc.msg.MessageAttributes) != n {
			t.Errorf("%s: the message itself was changed", tc.name)
		}
	}
}

// fakeSQS records the batches sent; fail says which bodies fail, and how
// (sender fault or not), the first time they are sent.
type fakeSQS struct {
	mu      sync.Mutex
	batches [][]string
	fail    map[string]bool // body → sender fault
	failed  map[string]bool
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	var bodies []string
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		if sender, ok := f.fail[body]; ok && !f.failed[body] {
			if f.failed == nil {
				f.failed = map[string]bool{}
			}
			f.failed[body] = true
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, SenderFault: sender, Code: aws.String("Oops")})
			continue
		}
		bodies = append(bodies, body)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	f.batches = append(f.batches, bodies)
	return out, nil
}

// A replay plans by reason and marker, sends a group in batches of at most
// ten, retries an entry that failed, skips a record without its body, and
// marks the group: a second plan leaves it, unless again.
func TestReplayerPlanAndSend(t *testing.T) {
	ctx := context.Background()
	store := &s3storetest.Mem{}
	w := NewWriter(Config{Prefix: "p/", MaxAge: time.Hour}, store, zaptest.NewLogger(t), nil)
	for i := range 23 {
		rec := Record{Body: fmt.Sprintf(`{"i":%d}`, i), Reason: "type_mismatch", MessageID: fmt.Sprintf("m-%d", i), ReceivedAt: time.Now(), Source: "sqs"}
		if i == 22 {
			rec.Body, rec.BodyBytes = "", 2<<20
		}
		if err := w.Add(ctx, rec, func(error) {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(ctx, Record{Body: "x", Reason: "bad_json", ReceivedAt: time.Now(), Source: "sqs"}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	q := &fakeSQS{fail: map[string]bool{`{"i":3}`: false}}
	r := &Replayer{Store: store, Prefix: "p/", SQS: q, QueueURL: "q", Key: []byte("a-replay-key-of-some-length")}
	p, err := r.Plan(ctx, time.Time{}, time.Time{}, "type_mismatch", false)
	if err != nil || len(p.Groups) != 1 || p.Other != 1 || p.Already != 0 {
		t.Fatalf("plan: %+v, %v", p, err)
	}
	sent, big, err := r.Send(ctx, p.Groups[0])
	if err != nil || sent != 22 || big != 1 {
		t.Fatalf("send: %d sent, %d too large, %v", sent, big, err)
	}
	for _, b := range q.batches {
		if len(b) > 10 {
			t.Errorf("a batch of %d", len(b))
		}
	}
	if p, err = r.Plan(ctx, time.Time{}, time.Time{}, "", false); err != nil || len(p.Groups) != 1 || p.Groups[0].Reason != "bad_json" || p.Already != 23 {
		t.Fatalf("plan after the send: %+v, %v", p, err)
	}
	if p, err = r.Plan(ctx, time.Time{}, time.Time{}, "", true); err != nil || len(p.Groups) != 2 {
		t.Fatalf("plan again: %+v, %v", p, err)
	}
	q.fail, q.failed = map[string]bool{"x": true}, nil
	if _, _, err := r.Send(ctx, p.Groups[1]); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a sender fault: %v", err)
	}
	if p, err = r.Plan(ctx, time.Time{}, time.Time{}, "", false); err != nil || len(p.Groups) != 1 {
		t.Fatalf("a group that failed was marked: %+v, %v", p, err)
	}
	var groups int
	rep, err := r.Replay(ctx, p, true, func(Group, int) { groups++ })
	var line strings.Builder
	rep.Write(&line)
	if want := "would replay 1 messages from 1 files (bad_json 1); 23 already replayed (--again re-sends them); 0 of other reasons\n"; err != nil || groups != 1 || line.String() != want {
		t.Fatalf("dry run: %v, %d groups, %q, want %q", err, groups, line.String(), want)
	}
}
