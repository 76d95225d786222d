package backfill

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// ReceivedAtField is the field in which `wharf serve` stores, in every raw
// document, the time it received the event, as a BSON date (the same name
// as ingest.ReceivedAtField): the event's received_at, and its event time
// when the event has none. It is not a field of the event.
const ReceivedAtField = "_wharf_received_at"

// converter turns stored documents back into the JSON events they were. One
// per worker: it reuses its buffer.
type converter struct {
	buf []byte
}

// eventJSON returns doc without its _id and ReceivedAtField as relaxed
// extended JSON: numbers are JSON numbers, dates {"$date": "…"} (which
// schema's time parsing accepts), ObjectIds {"$oid": "…"}. The _id is left
// out because it is the event id, not a field of the event: the streaming
// path stores the event's own fields with _id and its receive time added
// (docs/design.md §3).
//
// When typePath is set and the document has no value (or null) there, the
// event type typ is put there: a document of history written before wharf
// carries no type, its collection is its type (docs/design.md §3). It reports
// whether it did.
func (c *converter) eventJSON(doc bson.Raw, typePath []string, typ string) ([]byte, bool, error) {
	if typ == "" {
		typePath = nil
	}
	idx, dst := bsoncore.AppendDocumentStart(c.buf[:0])
	dst, added, err := appendEvent(dst, bsoncore.Document(doc), typePath, typ, true)
	if err != nil {
		return nil, false, fmt.Errorf("read document: %w", err)
	}
	dst, err = bsoncore.AppendDocumentEnd(dst, idx)
	if err != nil {
		return nil, false, err
	}
	c.buf = dst
	out, err := bson.MarshalExtJSON(bson.Raw(dst), false, false)
	if err != nil {
		return nil, false, fmt.Errorf("document to JSON: %w", err)
	}
	return out, added, nil
}

// appendEvent appends doc's elements to dst (leaving out the top-level _id
// and ReceivedAtField), with typ put at path when path is set and the
// document has no value there. A value on the way that is not a document
// stays as it is (and the event has no type).
func appendEvent(dst []byte, doc bsoncore.Document, path []string, typ string, top bool) ([]byte, bool, error) {
	elems, err := doc.Elements()
	if err != nil {
		return nil, false, err
	}
	found, added := false, false
	for _, e := range elems {
		key := e.Key()
		if top && (key == "_id" || key == ReceivedAtField) {
			continue
		}
		if len(path) > 0 && key == path[0] {
			found = true
			v := e.Value()
			switch {
			case len(path) == 1 && v.Type == bsoncore.TypeNull:
				dst = bsoncore.AppendStringElement(dst, key, typ)
				added = true
				continue
			case len(path) > 1 && v.Type == bsoncore.TypeEmbeddedDocument:
				var idx int32
				idx, dst = bsoncore.AppendDocumentElementStart(dst, key)
				dst, added, err = appendEvent(dst, v.Document(), path[1:], typ, false)
				if err != nil {
					return nil, false, err
				}
				if dst, err = bsoncore.AppendDocumentEnd(dst, idx); err != nil {
					return nil, false, err
				}
				continue
			}
		}
		dst = append(dst, e...)
	}
	if !found && len(path) > 0 {
		added = true
		if len(path) == 1 {
			return bsoncore.AppendStringElement(dst, path[0], typ), true, nil
		}
		idx, d := bsoncore.AppendDocumentElementStart(dst, path[0])
		d, _, _ = appendEvent(d, bsoncore.NewDocumentBuilder().Build(), path[1:], typ, false)
		if dst, err = bsoncore.AppendDocumentEnd(d, idx); err != nil {
			return nil, false, err
		}
	}
	return dst, added, nil
}

// receivedAt is the received time a backfilled event gets: the time `wharf
// serve` stored in the document (ReceivedAtField, a BSON date), else the
// creation time of an ObjectId _id (when the document reached Mongo), else
// fallback (the job's start, fixed in its plan so that a resumed job writes
// the same rows). known is false for the fallback.
func receivedAt(doc bson.Raw, id bson.RawValue, fallback time.Time) (t time.Time, known bool) {
	if v, err := doc.LookupErr(ReceivedAtField); err == nil {
		if ms, ok := v.DateTimeOK(); ok {
			return time.UnixMilli(ms).UTC(), true
		}
	}
	if oid, ok := id.ObjectIDOK(); ok {
		return oid.Timestamp().UTC(), true
	}
	return fallback, false
}
