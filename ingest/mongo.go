package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// RawStore writes raw event documents. Store returns, per document, nil when
// it is stored (a duplicate of its _id counts: the document is already
// there) or the error that kept it out, wrapping ErrRejected when the store
// refuses that document for good; err is set when the whole call failed,
// and wraps ErrUnavailable when the store could not be reached or ErrDenied
// when it refused wharf's credentials or permissions.
type RawStore interface {
	Store(ctx context.Context, collection string, docs []bson.Raw) (perDoc []error, err error)
}

// ErrUnavailable marks a RawStore error that says the store could not be
// reached (a network error, no server to select, a timeout), as opposed to
// a write it refused. The consumer retries such a call while it holds the
// messages, instead of leaving them for redelivery.
var ErrUnavailable = errors.New("raw store unavailable")

// ErrDenied marks a RawStore error that says the store refused wharf itself:
// its credentials (authentication failed) or its permissions (not
// authorized). No write can succeed until an operator fixes them, so the
// consumer treats it as an outage of the whole process: it stops polling
// and keeps the messages it holds, extended, until a write goes through.
var ErrDenied = errors.New("raw store denied access")

// ErrRejected marks a per-document RawStore error: the store refuses that
// document and would refuse it again (a validator, a document too large,
// a key or value it cannot store, a duplicate on a unique index other than
// _id). The consumer dead-letters its message (ReasonRawWriteRejected).
var ErrRejected = errors.New("raw document rejected")

// deniedCodes are server error codes that refuse wharf's credentials or
// permissions: Unauthorized, AuthenticationFailed, UserNotFound, and
// Atlas's AtlasError (a user not allowed an action, a quota exceeded).
var deniedCodes = []int{13, 18, 11, 8000}

// rejectedCodes are write error codes that refuse one document for good:
// BadValue (FerretDB: nested arrays, invalid key names), DollarPrefixedFieldName,
// EmptyFieldName, DottedFieldName, DocumentValidationFailure, KeyTooLong and
// BSONObjectTooLarge. A write error of any other code leaves the message for
// redelivery, as a failure that may pass.
var rejectedCodes = []int{2, 52, 56, 57, 121, 17280, 10334}

// dupCodes are the duplicate-key write error codes.
var dupCodes = []int{11000, 11001, 12582}

// maxDocument is the largest BSON document MongoDB stores (16 MiB): a larger
// one is rejected without being sent.
const maxDocument = 16 << 20

// MongoStore is a RawStore over a MongoDB (or FerretDB) database.
type MongoStore struct {
	db *mongo.Database
}

var _ RawStore = (*MongoStore)(nil)

// NewMongoStore returns a RawStore writing to db.
func NewMongoStore(db *mongo.Database) *MongoStore { return &MongoStore{db: db} }

// Store inserts docs with one unordered InsertMany. A document counts as
// stored when it was inserted, or when its write error is a duplicate key
// and a document with its _id is in the collection (the key may belong to
// another unique index: neither FerretDB nor every MongoDB version names
// it, so the _id is looked up). A write-concern error fails the call.
func (m *MongoStore) Store(ctx context.Context, collection string, docs []bson.Raw) ([]error, error) {
	perDoc := make([]error, len(docs))
	in := make([]any, 0, len(docs))
	sent := make([]int, 0, len(docs)) // index in docs of each document sent
	for i, d := range docs {
		if len(d) > maxDocument {
			perDoc[i] = fmt.Errorf("insert into %s: %w: code 10334 (BSONObjectTooLarge): the document is %d bytes, more than %d", collection, ErrRejected, len(d), maxDocument)
			continue
		}
		in = append(in, d)
		sent = append(sent, i)
	}
	if len(in) == 0 {
		return perDoc, nil
	}
	coll := m.db.Collection(collection)
	_, err := coll.InsertMany(ctx, in, options.InsertMany().SetOrdered(false))
	if err == nil {
		return perDoc, nil
	}
	if se, ok := errors.AsType[mongo.ServerError](err); ok && slices.ContainsFunc(deniedCodes, se.HasErrorCode) {
		return nil, fmt.Errorf("insert into %s: %w: %w", collection, ErrDenied, err)
	}
	bwe, ok := errors.AsType[mongo.BulkWriteException](err)
	if !ok {
		if unreachable(err) {
			return nil, fmt.Errorf("insert into %s: %w: %w", collection, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("insert into %s: %w", collection, err)
	}
	if bwe.WriteConcernError != nil {
		return nil, fmt.Errorf("insert into %s: write concern: %s", collection, bwe.WriteConcernError.Message)
	}
	var dups []int // indexes in docs
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(sent) {
			return nil, fmt.Errorf("insert into %s: write error for unknown index %d: %s", collection, we.Index, we.Message)
		}
		i := sent[we.Index]
		switch {
		case slices.ContainsFunc(dupCodes, we.HasErrorCode):
			dups = append(dups, i)
		case slices.ContainsFunc(rejectedCodes, we.HasErrorCode):
			perDoc[i] = fmt.Errorf("insert into %s: %w: code %d: %s", collection, ErrRejected, we.Code, we.Message)
		default:
			perDoc[i] = fmt.Errorf("insert into %s: code %d: %s", collection, we.Code, we.Message)
		}
	}
	if len(dups) == 0 {
		return perDoc, nil
	}
	found, err := m.present(ctx, coll, docs, dups)
	if err != nil {
		return nil, fmt.Errorf("insert into %s: look up duplicate _ids: %w", collection, err)
	}
	for _, i := range dups {
		if !found[idKey(docs[i])] {
			perDoc[i] = fmt.Errorf("insert into %s: %w: code 11000: duplicate key on a unique index other than _id (no document has its _id)", collection, ErrRejected)
		}
	}
	return perDoc, nil
}

// present returns the keys (idKey) of the _ids of docs[idx] that are in coll.
func (m *MongoStore) present(ctx context.Context, coll *mongo.Collection, docs []bson.Raw, idx []int) (map[string]bool, error) {
	// One equality per _id, not one $in: an equality on _id is what every
	// server answers from its index (FerretDB pushes down nothing else, and
	// scans the whole collection for a $in); a batch holds few duplicates.
	found := map[string]bool{}
	for _, i := range idx {
		var doc bson.Raw
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: docs[i].Lookup("_id")}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&doc)
		switch {
		case err == nil:
			found[idKey(doc)] = true
		case errors.Is(err, mongo.ErrNoDocuments):
		case unreachable(err):
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		default:
			return nil, err
		}
	}
	return found, nil
}

// unreachable reports whether err says Mongo could not be reached, or
// that the driver's connection pool was cleared after another operation
// failed (a connection error, or a handshake Mongo refused): retryable.
func unreachable(err error) bool {
	var sse topology.ServerSelectionError
	var pce driver.RetryablePoolError
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sse) || errors.As(err, &pce) && pce.Retryable()
}

// idKey is a document's _id as a comparable key: its BSON type and bytes.
func idKey(doc bson.Raw) string {
	v := doc.Lookup("_id")
	return string(rune(v.Type)) + string(v.Value)
}
