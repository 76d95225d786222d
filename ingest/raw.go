package ingest

import (
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// ReceivedAtField holds, in every raw document, the time serve received the
// event (docs/design.md §3): a BSON date, which no JSON value can become, so a
// backfill tells it from an event's own field. Backfill reads it as the
// event's received_at, and as its event time when the event has none.
const ReceivedAtField = "_wharf_received_at"

// rawDocument converts an event's JSON object to the BSON document stored in
// Mongo: _id = the event id first, then ReceivedAtField = received (a BSON
// date: milliseconds, the precision of SQS's first-receive time), then the
// event's fields in their order. An event's own top-level _id or
// ReceivedAtField is left out. Integers become int32 or int64 (as
// mongoimport does), other numbers double.
func rawDocument(dst []byte, id string, received time.Time, root *fastjson.Value) []byte {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "_id", id)
	dst = bsoncore.AppendDateTimeElement(dst, ReceivedAtField, received.UnixMilli())
	root.GetObject().Visit(func(k []byte, v *fastjson.Value) {
		if string(k) == "_id" || string(k) == ReceivedAtField {
			return
		}
		dst = appendValue(dst, string(k), v)
	})
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

func appendValue(dst []byte, key string, v *fastjson.Value) []byte {
	switch v.Type() {
	case fastjson.TypeObject:
		var idx int32
		idx, dst = bsoncore.AppendDocumentElementStart(dst, key)
		v.GetObject().Visit(func(k []byte, c *fastjson.Value) { dst = appendValue(dst, string(k), c) })
		dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	case fastjson.TypeArray:
		var idx int32
		idx, dst = bsoncore.AppendArrayElementStart(dst, key)
		for i, c := range v.GetArray() {
			dst = appendValue(dst, strconv.Itoa(i), c)
		}
		dst, _ = bsoncore.AppendArrayEnd(dst, idx)
	case fastjson.TypeString:
		dst = bsoncore.AppendStringElement(dst, key, string(v.GetStringBytes()))
	case fastjson.TypeNumber:
		raw := string(v.MarshalTo(nil))
		if !strings.ContainsAny(raw, ".eE") {
			if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
				if n >= -1<<31 && n < 1<<31 {
					return bsoncore.AppendInt32Element(dst, key, int32(n))
				}
				return bsoncore.AppendInt64Element(dst, key, n)
			}
		}
		f, _ := strconv.ParseFloat(raw, 64)
		dst = bsoncore.AppendDoubleElement(dst, key, f)
	case fastjson.TypeTrue:
		dst = bsoncore.AppendBooleanElement(dst, key, true)
	case fastjson.TypeFalse:
		dst = bsoncore.AppendBooleanElement(dst, key, false)
	default:
		dst = bsoncore.AppendNullElement(dst, key)
	}
	return dst
}
