package ingest

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/deadletter"
)

// envelopeFallbacks returns the event id and receive time that a message's
// event takes when it has none of its own (docs/design.md §3): the SQS message id
// and its first receive time, so that a redelivery keeps both. A message
// re-sent by `wharf deadletter replay` carries the original message's in
// attributes, and they win: a replayed event keeps its id and time, and the
// loader dedupes it like a redelivery however often it is replayed.
func envelopeFallbacks(msg types.Message, now time.Time) (id string, received time.Time) {
	id, received = aws.ToString(msg.MessageId), now
	if ms, err := strconv.ParseInt(msg.Attributes[string(types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)], 10, 64); err == nil {
		received = time.UnixMilli(ms)
	}
	if a, ok := msg.MessageAttributes[deadletter.AttrEventID]; ok && aws.ToString(a.StringValue) != "" {
		id = aws.ToString(a.StringValue)
	}
	if a, ok := msg.MessageAttributes[deadletter.AttrReceivedAt]; ok {
		if t, err := time.Parse(time.RFC3339Nano, aws.ToString(a.StringValue)); err == nil {
			received = t
		}
	}
	return id, received
}

// mongoID returns the _id a replayed backfill dead letter was read from
// (deadletter.AttrMongoID), or "".
func mongoID(msg types.Message) string {
	if a, ok := msg.MessageAttributes[deadletter.AttrMongoID]; ok {
		return aws.ToString(a.StringValue)
	}
	return ""
}

// ReplayAuth decides whether a message's wharf.* attributes come from
// `wharf deadletter replay`: any sender can set message attributes, and
// these ones choose an event's id and receive time (so the dedupe winner)
// and skip its raw write. They are honoured only when signed with the
// replay key (deadletter.Sign over them and the body); otherwise the
// message is taken as if it had none, counted in
// wharf_replay_attributes_ignored_total by reason, and the first such
// message is logged. A nil *ReplayAuth honours none and counts nothing.
type ReplayAuth struct {
	key     []byte
	log     *zap.Logger
	ignored *prometheus.CounterVec
	logged  sync.Once
}

// NewReplayAuth returns the check for key; an empty key honours no wharf.*
// attribute. reg may be nil.
func NewReplayAuth(key []byte, log *zap.Logger, reg prometheus.Registerer) *ReplayAuth {
	if log == nil {
		log = zap.NewNop()
	}
	a := &ReplayAuth{key: key, log: log.With(zap.String("component", "ingest")),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_replay_attributes_ignored_total",
			Help: "Messages whose wharf.* attributes were ignored: unsigned, badly signed, or no replay key configured."}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(a.ignored)
	}
	return a
}

// Trusted returns msg as the consumer should take it: as it is when it has
// no wharf.* attribute or they are signed with the key, otherwise without
// any wharf.* attribute (msg itself is not changed).
func (a *ReplayAuth) Trusted(msg types.Message) types.Message {
	var names []string
	attrs := make(map[string]string, len(msg.MessageAttributes))
	for k, v := range msg.MessageAttributes {
		if strings.HasPrefix(k, deadletter.AttrPrefix) {
			names = append(names, k)
		}
		attrs[k] = aws.ToString(v.StringValue)
	}
	if len(names) == 0 {
		return msg
	}
	if a != nil && deadletter.Verify(a.key, attrs, aws.ToString(msg.Body)) {
		return msg
	}
	stripped := make(map[string]types.MessageAttributeValue, len(msg.MessageAttributes))
	for k, v := range msg.MessageAttributes {
		if !strings.HasPrefix(k, deadletter.AttrPrefix) {
			stripped[k] = v
		}
	}
	if a != nil {
		reason := "bad_signature"
		switch {
		case len(a.key) == 0:
			reason = "no_replay_key"
		case attrs[deadletter.AttrSignature] == "":
			reason = "unsigned"
		}
		a.ignored.WithLabelValues(reason).Inc()
		a.logged.Do(func() {
			sort.Strings(names)
			a.log.Warn("wharf.* message attributes ignored: only a replay signed with deadletter.replay_key sets them (logged once; see wharf_replay_attributes_ignored_total)",
				zap.String("reason", reason), zap.String("message_id", aws.ToString(msg.MessageId)), zap.Strings("attributes", names))
		})
	}
	msg.MessageAttributes = stripped
	return msg
}
