package ingest

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/wharfdata/wharf/schema"
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
func rawDocument(dst []byte, id string, received time.Time, root schema.Node) []byte {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "_id", id)
	dst = bsoncore.AppendDateTimeElement(dst, ReceivedAtField, received.UnixMilli())
	for k, v := range root.Members() {
		if string(k) == "_id" || string(k) == ReceivedAtField {
			continue
		}
		dst = appendValue(dst, k, v)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// appendValue appends the element key: v. key and v's text are the event's
// (schema.Node), read from the Decoder's tape: nothing is parsed again.
func appendValue(dst []byte, key []byte, v schema.Node) []byte {
	switch v.Kind() {
	case schema.NodeObject:
		var idx int32
		idx, dst = appendElementStart(dst, bsoncore.TypeEmbeddedDocument, key)
		for k, c := range v.Members() {
			dst = appendValue(dst, k, c)
		}
		dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	case schema.NodeArray:
		var idx int32
		idx, dst = appendElementStart(dst, bsoncore.TypeArray, key)
		var num [20]byte
		i := 0
		for c := range v.Elements() {
			dst = appendValue(dst, strconv.AppendInt(num[:0], int64(i), 10), c)
			i++
		}
		dst, _ = bsoncore.AppendArrayEnd(dst, idx)
	case schema.NodeString:
		dst = appendHeader(dst, bsoncore.TypeString, key)
		s := v.Text()
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)+1))
		dst = append(dst, s...)
		dst = append(dst, 0)
	case schema.NodeNumber:
		raw := v.Text()
		if bytes.IndexAny(raw, ".eE") < 0 {
			if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				if n >= -1<<31 && n < 1<<31 {
					return bsoncore.AppendInt32(appendHeader(dst, bsoncore.TypeInt32, key), int32(n))
				}
				return bsoncore.AppendInt64(appendHeader(dst, bsoncore.TypeInt64, key), n)
			}
		}
		f, _ := strconv.ParseFloat(string(raw), 64)
		dst = bsoncore.AppendDouble(appendHeader(dst, bsoncore.TypeDouble, key), f)
	case schema.NodeTrue:
		dst = bsoncore.AppendBoolean(appendHeader(dst, bsoncore.TypeBoolean, key), true)
	case schema.NodeFalse:
		dst = bsoncore.AppendBoolean(appendHeader(dst, bsoncore.TypeBoolean, key), false)
	default:
		dst = appendHeader(dst, bsoncore.TypeNull, key)
	}
	return dst
}

// appendHeader appends an element's type and key (a cstring: the key holds
// no NUL, which the decoder refuses).
func appendHeader(dst []byte, t bsoncore.Type, key []byte) []byte {
	dst = append(dst, byte(t))
	dst = append(dst, key...)
	return append(dst, 0)
}

// appendElementStart starts an embedded document or array element and
// returns the index of its length.
func appendElementStart(dst []byte, t bsoncore.Type, key []byte) (int32, []byte) {
	dst = appendHeader(dst, t, key)
	idx := int32(len(dst))
	return idx, append(dst, 0, 0, 0, 0)
}
