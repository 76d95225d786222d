package deadletter

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The replay wire format: how `wharf deadletter replay` writes a record as
// an SQS message (ReplayAttributes) and how the consumer reads one back
// (Authenticate, Origin, MongoID). Both sides live here, with the signature
// (Sign, Verify) that ties them.

// maxAttributes is the most message attributes SQS takes on one message.
const maxAttributes = 10

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// ReplayAttributes returns the attributes r is re-sent with: the event id
// and first receive time it had (AttrEventID and AttrReceivedAt), for a
// backfill dead letter its document's _id (AttrMongoID), their signature
// under key with the body (AttrSignature: the consumer honours them only
// when it holds), then the record's own string attributes but wharf.* ones,
// in name order, as many as SQS allows (ten in all).
func ReplayAttributes(r Record, key []byte) map[string]types.MessageAttributeValue {
	signed := map[string]string{}
	if id := r.EventID; id != "" {
		signed[AttrEventID] = id
	} else if r.MessageID != "" {
		signed[AttrEventID] = r.MessageID
	}
	if !r.ReceivedAt.IsZero() {
		signed[AttrReceivedAt] = r.ReceivedAt.UTC().Format(time.RFC3339Nano)
	}
	if r.Source == "backfill" && r.EventID != "" {
		signed[AttrMongoID] = r.EventID
	}
	attrs := make(map[string]types.MessageAttributeValue, maxAttributes)
	for k, v := range signed {
		attrs[k] = stringAttr(v)
	}
	attrs[AttrSignature] = stringAttr(Sign(key, signed, r.Body))
	names := make([]string, 0, len(r.Attributes))
	for k, v := range r.Attributes {
		if v != "" && !strings.HasPrefix(k, AttrPrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if len(attrs) == maxAttributes {
			break
		}
		attrs[k] = stringAttr(r.Attributes[k])
	}
	return attrs
}

// Why Authenticate dropped a message's wharf.* attributes.
const (
	IgnoredNoKey        = "no_replay_key" // the consumer holds no replay key
	IgnoredUnsigned     = "unsigned"      // no AttrSignature
	IgnoredBadSignature = "bad_signature" // a signature that does not verify
)

// Authenticate returns msg as a consumer should take it: as it is when it
// has no wharf.* attribute or they are signed with key (Verify), otherwise
// without any wharf.* attribute, with why (IgnoredNoKey, IgnoredUnsigned
// or IgnoredBadSignature) and the names it dropped, sorted. msg itself is
// not changed. Any sender can set message attributes, and these choose an
// event's id and receive time (so the dedupe winner) and skip its raw
// write: only a replay holding the key may set them.
func Authenticate(key []byte, msg types.Message) (trusted types.Message, ignored string, dropped []string) {
	attrs := make(map[string]string, len(msg.MessageAttributes))
	stripped := make(map[string]types.MessageAttributeValue, len(msg.MessageAttributes))
	for k, v := range msg.MessageAttributes {
		attrs[k] = aws.ToString(v.StringValue)
		if strings.HasPrefix(k, AttrPrefix) {
			dropped = append(dropped, k)
		} else {
			stripped[k] = v
		}
	}
	if len(dropped) == 0 || Verify(key, attrs, aws.ToString(msg.Body)) {
		return msg, "", nil
	}
	sort.Strings(dropped)
	switch {
	case len(key) == 0:
		ignored = IgnoredNoKey
	case attrs[AttrSignature] == "":
		ignored = IgnoredUnsigned
	default:
		ignored = IgnoredBadSignature
	}
	msg.MessageAttributes = stripped
	return msg, ignored, dropped
}

// Origin returns the event id and receive time that a message's event
// takes when it has none of its own (docs/design.md §3): the SQS message
// id and its first receive time (now when SQS gives none), so that a
// redelivery keeps both. A message re-sent by replay carries the original
// message's (AttrEventID, AttrReceivedAt), and they win: a replayed event
// keeps its id and time, and the loader dedupes it like a redelivery
// however often it is replayed. Call it on a message Authenticate let
// through.
func Origin(msg types.Message, now time.Time) (id string, received time.Time) {
	id, received = aws.ToString(msg.MessageId), now
	if ms, err := strconv.ParseInt(msg.Attributes[string(types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)], 10, 64); err == nil {
		received = time.UnixMilli(ms)
	}
	if a, ok := msg.MessageAttributes[AttrEventID]; ok && aws.ToString(a.StringValue) != "" {
		id = aws.ToString(a.StringValue)
	}
	if a, ok := msg.MessageAttributes[AttrReceivedAt]; ok {
		if t, err := time.Parse(time.RFC3339Nano, aws.ToString(a.StringValue)); err == nil {
			received = t
		}
	}
	return id, received
}

// MongoID returns the _id of the Mongo document a replayed backfill dead
// letter was read from (AttrMongoID), or "". Call it on a message
// Authenticate let through.
func MongoID(msg types.Message) string {
	if a, ok := msg.MessageAttributes[AttrMongoID]; ok {
		return aws.ToString(a.StringValue)
	}
	return ""
}
