package ingest

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wharfdata/wharf/deadletter"
)

// envelopeFallbacks returns the event id and receive time that a message's
// event takes when it has none of its own (design §3): the SQS message id
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
