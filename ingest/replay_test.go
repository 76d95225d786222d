package ingest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wharfdata/wharf/deadletter"
	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
)

// Any sender can set message attributes; the consumer honours wharf.* ones
// only when a replay signed them with the key. An unsigned or badly signed
// wharf.event_id does not choose the event's id, a wharf.mongo_id does not
// skip its raw write, a signature over another body does not carry over;
// each is counted by reason and the first is logged, once. A signed one
// still works.
func TestReplayAttributesNeedSignature(t *testing.T) {
	key := []byte("replay-key-for-this-test")
	str := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	signed := func(k []byte, body string, attrs map[string]string) map[string]types.MessageAttributeValue {
		out := map[string]types.MessageAttributeValue{}
		for n, v := range attrs {
			out[n] = str(v)
		}
		out[deadletter.AttrSignature] = str(deadletter.Sign(k, attrs, body))
		return out
	}
	body := func(user int) string { return fmt.Sprintf(`{"event":"click","user_id":%d}`, user) }
	cases := []struct {
		name    string
		body    string
		attrs   map[string]types.MessageAttributeValue
		wantID  string // "" : the SQS message id
		wantRaw bool   // a raw document is written
	}{
		{"unsigned event id and time", body(1), map[string]types.MessageAttributeValue{
			deadletter.AttrEventID: str("forged-1"), deadletter.AttrReceivedAt: str("2020-01-01T00:00:00Z"), "team": str("growth")}, "", true},
		{"unsigned mongo id", body(2), map[string]types.MessageAttributeValue{deadletter.AttrMongoID: str("forged-2")}, "", true},
		{"signed with another key", body(3), signed([]byte("not-the-replay-key-at-all"), body(3), map[string]string{deadletter.AttrEventID: "forged-3"}), "", true},
		{"signed for another body", body(4), signed(key, body(99), map[string]string{deadletter.AttrEventID: "forged-4"}), "", true},
		{"signed by replay", body(5), signed(key, body(5), map[string]string{deadletter.AttrEventID: "replayed-5"}), "replayed-5", true},
		{"signed backfill replay", body(6), signed(key, body(6), map[string]string{deadletter.AttrEventID: "doc-6", deadletter.AttrMongoID: "doc-6"}), "doc-6", false},
		{"no wharf attributes", body(7), map[string]types.MessageAttributeValue{"team": str("growth")}, "", true},
	}

	st := stacktest.Get(t)
	client := st.SQS(t)
	queue := st.Queue(t, map[string]string{"VisibilityTimeout": "30"})
	mc, db := st.Mongo(t)
	sch, err := schema.Parse([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	obs, logs := observer.New(zapcore.WarnLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obs))
	reg := prometheus.NewRegistry()
	sink := &holdSink{autoAck: true}
	dl := deadletter.NewWriter(deadletter.Config{Prefix: st.Prefix(), MaxAge: 200 * time.Millisecond}, s3store.New(st.S3(t), st.Bucket), log, reg)
	runWriter(t, dl)
	cfg := DefaultConfig()
	cfg.QueueURL, cfg.Pollers, cfg.WaitTime = queue, 2, time.Second
	cfg.Replay = NewReplayAuth(key, log, reg)
	c, err := New(cfg, client, sch, schema.DefaultEnvelope(), NewMongoStore(mc.Database(db)), sink, dl, log, reg)
	if err != nil {
		t.Fatal(err)
	}

	ids := make([]string, len(cases))
	for i, tc := range cases {
		out, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(tc.body), MessageAttributes: tc.attrs})
		if err != nil {
			t.Fatalf("%s: send: %v", tc.name, err)
		}
		ids[i] = aws.ToString(out.MessageId)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		dl.Close(dctx)
		c.Close(dctx)
	}()
	stacktest.Eventually(t, "every event in the sink", 30*time.Second, func() bool { n, _ := sink.count(); return n == len(cases) })

	sink.mu.Lock()
	got := make([]string, 0, len(sink.rows))
	for id := range sink.rows {
		got = append(got, id)
	}
	sink.mu.Unlock()
	raw := mc.Database(db).Collection("clicks")
	for i, tc := range cases {
		want := tc.wantID
		if want == "" {
			want = ids[i]
		}
		if !slices.Contains(got, want) {
			t.Errorf("%s: no event %s in the sink (it holds %v)", tc.name, want, got)
		}
		n, err := raw.CountDocuments(context.Background(), bson.D{{Key: "_id", Value: want}})
		if err != nil {
			t.Fatal(err)
		}
		if (n == 1) != tc.wantRaw {
			t.Errorf("%s: %d raw documents with _id %s, want a raw write: %v", tc.name, n, want, tc.wantRaw)
		}
	}
	for reason, want := range map[string]float64{"unsigned": 2, "bad_signature": 2, "no_replay_key": 0} {
		if n := testutil.ToFloat64(cfg.Replay.ignored.WithLabelValues(reason)); n != want {
			t.Errorf("ignored %s: %v, want %v", reason, n, want)
		}
	}
	if n := logs.FilterMessageSnippet("wharf.* message attributes ignored").Len(); n != 1 {
		t.Errorf("%d log lines about ignored attributes, want 1", n)
	}
}

// Without a replay key no wharf.* attribute is honoured; a nil ReplayAuth
// honours none either; a message without wharf.* attributes is unchanged.
func TestReplayAuthWithoutKey(t *testing.T) {
	attrs := map[string]string{deadletter.AttrEventID: "x"}
	msg := types.Message{MessageId: aws.String("m"), Body: aws.String("{}"), MessageAttributes: map[string]types.MessageAttributeValue{
		deadletter.AttrEventID:   {DataType: aws.String("String"), StringValue: aws.String("x")},
		deadletter.AttrSignature: {DataType: aws.String("String"), StringValue: aws.String(deadletter.Sign(nil, attrs, "{}"))},
		"team":                   {DataType: aws.String("String"), StringValue: aws.String("growth")},
	}}
	for _, tc := range []struct {
		name string
		auth *ReplayAuth
	}{
		{"empty key", NewReplayAuth(nil, nil, nil)},
		{"nil", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.auth.Trusted(msg)
			if _, ok := got.MessageAttributes[deadletter.AttrEventID]; ok || len(got.MessageAttributes) != 1 {
				t.Fatalf("attributes kept: %v", got.MessageAttributes)
			}
			if len(msg.MessageAttributes) != 3 {
				t.Fatal("the message itself was changed")
			}
			if id, _ := deadletter.Origin(got, time.Now()); id != "m" {
				t.Fatalf("id %q, want the message id", id)
			}
		})
	}
	plain := types.Message{MessageId: aws.String("m"), MessageAttributes: map[string]types.MessageAttributeValue{"team": {DataType: aws.String("String"), StringValue: aws.String("g")}}}
	if got := NewReplayAuth([]byte("k"), nil, nil).Trusted(plain); len(got.MessageAttributes) != 1 {
		t.Fatalf("a message without wharf.* attributes changed: %v", got.MessageAttributes)
	}
}
