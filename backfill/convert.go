package backfill

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// converter turns stored documents back into the JSON events they were. One
// per worker: it reuses its buffer.
type converter struct {
	buf []byte
}

// eventJSON returns doc without its _id as relaxed extended JSON: numbers
// are JSON numbers, dates {"$date": "…"} (which schema's time parsing
// accepts), ObjectIds {"$oid": "…"}. The _id is left out because it is the
// event id, not a field of the event: the streaming path stores the event's
// own fields with _id added (design §3).
func (c *converter) eventJSON(doc bson.Raw) ([]byte, error) {
	elems, err := bsoncore.Document(doc).Elements()
	if err != nil {
		return nil, fmt.Errorf("read document: %w", err)
	}
	idx, dst := bsoncore.AppendDocumentStart(c.buf[:0])
	for _, e := range elems {
		if e.Key() == "_id" {
			continue
		}
		dst = append(dst, e...)
	}
	dst, err = bsoncore.AppendDocumentEnd(dst, idx)
	if err != nil {
		return nil, err
	}
	c.buf = dst
	out, err := bson.MarshalExtJSON(bson.Raw(dst), false, false)
	if err != nil {
		return nil, fmt.Errorf("document to JSON: %w", err)
	}
	return out, nil
}

// receivedAt is the received time a backfilled event gets: the creation time
// of an ObjectId _id (when the document reached Mongo), else fallback (the
// job's start, fixed in its plan so that a resumed job writes the same rows).
func receivedAt(id bson.RawValue, fallback time.Time) time.Time {
	if oid, ok := id.ObjectIDOK(); ok {
		return oid.Timestamp().UTC()
	}
	return fallback
}
