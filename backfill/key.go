package backfill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Key is an _id value: any BSON value, kept as its raw bytes. In JSON (plans
// and checkpoints) it is canonical extended JSON, so its BSON type survives
// the round trip (an ObjectId stays an ObjectId, an int64 an int64).
type Key struct {
	bson.RawValue
}

// keyOf copies v: a cursor's current document is reused by its next batch.
func keyOf(v bson.RawValue) Key {
	return Key{bson.RawValue{Type: v.Type, Value: bytes.Clone(v.Value)}}
}

// MarshalJSON writes the key as canonical extended JSON.
func (k Key) MarshalJSON() ([]byte, error) {
	doc := bsoncore.NewDocumentBuilder().AppendValue("k", bsoncore.Value{Type: bsoncore.Type(k.Type), Data: k.Value}).Build()
	ext, err := bson.MarshalExtJSON(bson.Raw(doc), true, false)
	if err != nil {
		return nil, fmt.Errorf("key to JSON: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ext, &m); err != nil {
		return nil, fmt.Errorf("key to JSON: %w", err)
	}
	return m["k"], nil
}

// UnmarshalJSON reads a key written by MarshalJSON.
func (k *Key) UnmarshalJSON(b []byte) error {
	wrapped := append(append([]byte(`{"k":`), b...), '}')
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON(wrapped, true, &doc); err != nil {
		return fmt.Errorf("key %s: %w", b, err)
	}
	v, err := doc.LookupErr("k")
	if err != nil {
		return fmt.Errorf("key %s: %w", b, err)
	}
	*k = keyOf(v)
	return nil
}

// String is the key as extended JSON, for logs.
func (k Key) String() string {
	b, err := k.MarshalJSON()
	if err != nil {
		return "?"
	}
	return string(b)
}

// typeClass is the rank of a BSON type in MongoDB's comparison order. A range
// operator ($gt, $lt, …) only matches values of its operand's class ("type
// bracketing"), while a sort on _id orders classes by this rank.
func typeClass(t bson.Type) int {
	switch t {
	case bson.TypeMinKey:
		return 0
	case bson.TypeNull, bson.TypeUndefined:
		return 1
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return 2
	case bson.TypeString, bson.TypeSymbol:
		return 3
	case bson.TypeEmbeddedDocument:
		return 4
	case bson.TypeArray:
		return 5
	case bson.TypeBinary:
		return 6
	case bson.TypeObjectID:
		return 7
	case bson.TypeBoolean:
		return 8
	case bson.TypeDateTime:
		return 9
	case bson.TypeTimestamp:
		return 10
	case bson.TypeRegex:
		return 11
	case bson.TypeMaxKey:
		return 13
	}
	return 12 // the rare rest (code, DBPointer) sort before MaxKey
}

// classTypes are the $type names of each class.
var classTypes = [][]string{
	0: {"minKey"}, 1: {"null", "undefined"}, 2: {"number"}, 3: {"string", "symbol"}, 4: {"object"},
	5: {"array"}, 6: {"binData"}, 7: {"objectId"}, 8: {"bool"}, 9: {"date"}, 10: {"timestamp"},
	11: {"regex"}, 12: {"javascript", "javascriptWithScope", "dbPointer"}, 13: {"maxKey"},
}

// typeAlias is the $type name of a BSON type.
func typeAlias(t bson.Type) string {
	switch t {
	case bson.TypeDouble:
		return "double"
	case bson.TypeString:
		return "string"
	case bson.TypeEmbeddedDocument:
		return "object"
	case bson.TypeArray:
		return "array"
	case bson.TypeBinary:
		return "binData"
	case bson.TypeUndefined:
		return "undefined"
	case bson.TypeObjectID:
		return "objectId"
	case bson.TypeBoolean:
		return "bool"
	case bson.TypeDateTime:
		return "date"
	case bson.TypeNull:
		return "null"
	case bson.TypeRegex:
		return "regex"
	case bson.TypeDBPointer:
		return "dbPointer"
	case bson.TypeJavaScript:
		return "javascript"
	case bson.TypeSymbol:
		return "symbol"
	case bson.TypeCodeWithScope:
		return "javascriptWithScope"
	case bson.TypeInt32:
		return "int"
	case bson.TypeTimestamp:
		return "timestamp"
	case bson.TypeInt64:
		return "long"
	case bson.TypeDecimal128:
		return "decimal"
	case bson.TypeMinKey:
		return "minKey"
	case bson.TypeMaxKey:
		return "maxKey"
	}
	return ""
}

// aliasClass is the class of a $type name written by typeAlias.
func aliasClass(alias string) int {
	for _, t := range []bson.Type{bson.TypeDouble, bson.TypeString, bson.TypeEmbeddedDocument, bson.TypeArray, bson.TypeBinary,
		bson.TypeUndefined, bson.TypeObjectID, bson.TypeBoolean, bson.TypeDateTime, bson.TypeNull, bson.TypeRegex, bson.TypeDBPointer,
		bson.TypeJavaScript, bson.TypeSymbol, bson.TypeCodeWithScope, bson.TypeInt32, bson.TypeTimestamp, bson.TypeInt64,
		bson.TypeDecimal128, bson.TypeMinKey, bson.TypeMaxKey} {
		if typeAlias(t) == alias {
			return typeClass(t)
		}
	}
	return -1
}

const numClasses = 14

// boundaryOK reports whether v can split ranges: a value of a class that
// sorts in one place (not MinKey, MaxKey, null or a NaN).
func boundaryOK(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeMinKey, bson.TypeMaxKey, bson.TypeNull, bson.TypeUndefined, bson.TypeArray:
		return false
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		return ok && !math.IsNaN(f)
	}
	return v.Validate() == nil
}

// compareKeys orders keys as MongoDB sorts _id: by class, then by value
// within the class. It handles the classes an _id takes in practice
// (numbers, strings, ObjectIds, dates, booleans, binary) exactly and falls
// back to the raw bytes for the rest, which only affects how evenly ranges
// split, never which documents a range holds.
func compareKeys(a, b bson.RawValue) int {
	ca, cb := typeClass(a.Type), typeClass(b.Type)
	if ca != cb {
		return ca - cb
	}
	switch ca {
	case 2:
		return compareNumbers(a, b)
	case 3:
		return bytes.Compare([]byte(stringOf(a)), []byte(stringOf(b)))
	case 6:
		sa, da, _ := a.BinaryOK()
		sb, db, _ := b.BinaryOK()
		if len(da) != len(db) {
			return len(da) - len(db)
		}
		if sa != sb {
			return int(sa) - int(sb)
		}
		return bytes.Compare(da, db)
	case 7:
		oa, ob := a.ObjectID(), b.ObjectID()
		return bytes.Compare(oa[:], ob[:])
	case 8:
		ba, bb := a.Boolean(), b.Boolean()
		switch {
		case ba == bb:
			return 0
		case bb:
			return -1
		}
		return 1
	case 9:
		da, db := a.DateTime(), b.DateTime()
		switch {
		case da < db:
			return -1
		case da > db:
			return 1
		}
		return 0
	}
	return bytes.Compare(a.Value, b.Value)
}

func stringOf(v bson.RawValue) string {
	if v.Type == bson.TypeSymbol {
		return v.Symbol()
	}
	return v.StringValue()
}

func compareNumbers(a, b bson.RawValue) int {
	if a.Type != bson.TypeDecimal128 && b.Type != bson.TypeDecimal128 && a.Type != bson.TypeDouble && b.Type != bson.TypeDouble {
		x, y := a.AsInt64(), b.AsInt64()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	x, y := numberFloat(a), numberFloat(b)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func numberFloat(v bson.RawValue) float64 {
	if v.Type == bson.TypeDecimal128 {
		d := v.Decimal128()
		f, err := strconv.ParseFloat(d.String(), 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	f, _ := v.AsFloat64OK()
	return f
}

// idString is the event id of a document: an ObjectId as its 24-digit hex
// string (docs/design.md §3), a string as it is, an integer in decimal. Other _id
// types have no event id.
func idString(v bson.RawValue) (string, error) {
	switch v.Type {
	case bson.TypeObjectID:
		return v.ObjectID().Hex(), nil
	case bson.TypeString:
		return v.StringValue(), nil
	case bson.TypeInt32:
		return strconv.FormatInt(int64(v.Int32()), 10), nil
	case bson.TypeInt64:
		return strconv.FormatInt(v.Int64(), 10), nil
	case bson.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return strconv.FormatInt(int64(f), 10), nil
		}
	}
	return "", fmt.Errorf("an _id of type %s has no event id", v.Type)
}

// rangeFilter is the query for the keys of a range after a position: keys
// greater than after (or, with no after, at least lo), and less than hi. A nil
// bound is open. Because range operators only match their operand's type
// class, a range whose ends lie in different classes becomes an $or: the rest
// of lo's class, the classes in between (by $type), and the start of hi's
// class. types, when not nil, are the $type names of the _id types present
// in the collection when the plan was made: only those are asked for (a
// server may not know every deprecated type's name), and a range that other
// types cannot reach stays one simple range.
func rangeFilter(lo, hi, after *Key, types []string) bson.D {
	var lower *Key
	lowerOp := "$gte"
	if after != nil {
		lower, lowerOp = after, "$gt"
	} else if lo != nil {
		lower = lo
	}
	lc, hc := -1, numClasses
	if lower != nil {
		lc = typeClass(lower.Type)
	}
	if hi != nil {
		hc = typeClass(hi.Type)
	}
	if lower != nil && hi != nil && lc == hc {
		return bson.D{{Key: "_id", Value: bson.D{{Key: lowerOp, Value: lower.RawValue}, {Key: "$lt", Value: hi.RawValue}}}}
	}
	if lower == nil && hi == nil {
		return bson.D{}
	}
	var or bson.A
	if lower != nil {
		or = append(or, bson.D{{Key: "_id", Value: bson.D{{Key: lowerOp, Value: lower.RawValue}}}})
	}
	var between bson.A
	if types != nil {
		for _, name := range types {
			if c := aliasClass(name); c > lc && c < hc {
				between = append(between, name)
			}
		}
	} else {
		for c := lc + 1; c < hc; c++ {
			for _, name := range classTypes[c] {
				between = append(between, name)
			}
		}
	}
	if len(between) > 0 {
		var t any = between
		if len(between) == 1 {
			t = between[0]
		}
		or = append(or, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: t}}}})
	}
	if hi != nil {
		or = append(or, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: hi.RawValue}}}})
	}
	if len(or) == 1 {
		return or[0].(bson.D)
	}
	return bson.D{{Key: "$or", Value: or}}
}

// and joins filters with $and, leaving out empty ones.
func and(filters ...bson.D) bson.D {
	var parts bson.A
	for _, f := range filters {
		if len(f) > 0 {
			parts = append(parts, f)
		}
	}
	switch len(parts) {
	case 0:
		return bson.D{}
	case 1:
		return parts[0].(bson.D)
	}
	return bson.D{{Key: "$and", Value: parts}}
}

// errNoID is a document without an _id, which MongoDB never returns.
var errNoID = errors.New("document has no _id")
