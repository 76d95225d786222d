package ingest

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// RawStore writes raw event documents. Store returns, per document, nil when
// it is stored (a duplicate key counts: the document is already there) or
// the error that kept it out; err is set when the whole call failed, and
// wraps ErrUnavailable when the store could not be reached.
type RawStore interface {
	Store(ctx context.Context, collection string, docs []bson.Raw) (perDoc []error, err error)
}

// ErrUnavailable marks a RawStore error that says the store could not be
// reached (a network error, no server to select, a timeout), as opposed to
// a write it refused. The consumer retries such a call while it holds the
// messages, instead of leaving them for redelivery.
var ErrUnavailable = errors.New("raw store unavailable")

// MongoStore is a RawStore over a MongoDB (or FerretDB) database.
type MongoStore struct {
	db *mongo.Database
}

var _ RawStore = (*MongoStore)(nil)

// NewMongoStore returns a RawStore writing to db.
func NewMongoStore(db *mongo.Database) *MongoStore { return &MongoStore{db: db} }

// Store inserts docs with one unordered InsertMany. A batch counts as stored
// only when every write error is a duplicate key and there is no
// write-concern error.
func (m *MongoStore) Store(ctx context.Context, collection string, docs []bson.Raw) ([]error, error) {
	perDoc := make([]error, len(docs))
	if len(docs) == 0 {
		return perDoc, nil
	}
	in := make([]any, len(docs))
	for i, d := range docs {
		in[i] = d
	}
	_, err := m.db.Collection(collection).InsertMany(ctx, in, options.InsertMany().SetOrdered(false))
	if err == nil {
		return perDoc, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		var sse topology.ServerSelectionError
		if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sse) {
			return nil, fmt.Errorf("insert into %s: %w: %w", collection, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("insert into %s: %w", collection, err)
	}
	if bwe.WriteConcernError != nil {
		return nil, fmt.Errorf("insert into %s: write concern: %s", collection, bwe.WriteConcernError.Message)
	}
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(docs) {
			return nil, fmt.Errorf("insert into %s: write error for unknown index %d: %s", collection, we.Index, we.Message)
		}
		if we.HasErrorCode(11000) || we.HasErrorCode(11001) || we.HasErrorCode(12582) {
			continue
		}
		perDoc[we.Index] = fmt.Errorf("insert into %s: code %d: %s", collection, we.Code, we.Message)
	}
	return perDoc, nil
}
