package backfill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// source is the backfill's side of MongoDB: every driver call it makes.
type source struct {
	db        *mongo.Database
	rp        *readpref.ReadPref
	batchSize int32
}

func newSource(db *mongo.Database, readPreference string, batchSize int32) (*source, error) {
	mode, err := readpref.ModeFromString(readPreference)
	if err != nil {
		return nil, fmt.Errorf("backfill.read_preference %q: %w", readPreference, err)
	}
	rp, err := readpref.New(mode)
	if err != nil {
		return nil, fmt.Errorf("backfill.read_preference %q: %w", readPreference, err)
	}
	return &source{db: db, rp: rp, batchSize: batchSize}, nil
}

func (s *source) coll(name string) *mongo.Collection {
	return s.db.Collection(name, options.Collection().SetReadPreference(s.rp))
}

// scan opens one cursor over the documents matching filter, in _id order.
// On MongoDB an _id range with this sort walks the _id index.
func (s *source) scan(ctx context.Context, coll string, filter bson.D) (*mongo.Cursor, error) {
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(s.batchSize)
	cur, err := s.coll(coll).Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find in %s: %w", coll, err)
	}
	return cur, nil
}

// estimatedCount is the collection's size from its metadata: $collStats'
// count (summed over shards), which MongoDB and FerretDB both answer without
// reading documents; estimatedDocumentCount where $collStats is refused
// (FerretDB reads every document for that one).
func (s *source) estimatedCount(ctx context.Context, coll string) (int64, error) {
	cur, err := s.coll(coll).Aggregate(ctx, mongo.Pipeline{{{Key: "$collStats", Value: bson.D{{Key: "count", Value: bson.D{}}}}}})
	if err == nil {
		var total int64
		for cur.Next(ctx) {
			if v, lerr := cur.Current.LookupErr("count"); lerr == nil {
				if n, ok := v.AsInt64OK(); ok {
					total += n
				}
			}
		}
		err = cur.Err()
		cur.Close(ctx)
		if err == nil {
			return total, nil
		}
	}
	n, err := s.coll(coll).EstimatedDocumentCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", coll, err)
	}
	return n, nil
}

// keySample describes a collection's _ids for range planning.
type keySample struct {
	keys  []Key    // a uniform sample
	total int64    // documents in the collection (estimated unless exact)
	types []string // $type names of the _id types present; nil when unknown (from a sample)
}

// sampleKeys returns about n random _ids (Sample). Where $sample is not
// implemented (FerretDB), the scan reads every _id once (projected,
// unsorted), which also gives the exact count and the type classes present.
func (s *source) sampleKeys(ctx context.Context, coll string, n int) (keySample, error) {
	var ks keySample
	seen := map[string]bool{}
	raws, how, err := Sample(ctx, s.coll(coll), n, SampleOptions{
		Projection: bson.D{{Key: "_id", Value: 1}}, BatchSize: max(s.batchSize, 10_000),
		Keep: func(doc bson.Raw) bool {
			v, err := doc.LookupErr("_id")
			if err != nil {
				return false
			}
			ks.total++
			seen[typeAlias(v.Type)] = true
			return boundaryOK(v)
		},
	})
	if err != nil {
		return keySample{}, fmt.Errorf("sample _id: %w", err)
	}
	for _, doc := range raws {
		if v, err := doc.LookupErr("_id"); err == nil && boundaryOK(v) {
			ks.keys = append(ks.keys, keyOf(v))
		}
	}
	if how == SampledByServer {
		ks.total, err = s.estimatedCount(ctx, coll)
		return ks, err
	}
	if !seen[""] { // a type without a $type name: ask for every type
		ks.types = slices.Sorted(maps.Keys(seen))
	}
	return ks, nil
}

// transient reports whether a cursor error may go away when the range is
// reopened: a network error or timeout, a cursor the server dropped (idle
// past its timeout, or killed), or a replica set changing its primary. A
// query the server refuses (a bad --filter) is not.
func transient(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	var le interface{ HasErrorLabel(string) bool }
	if errors.As(err, &le) && (le.HasErrorLabel("RetryableReadError") || le.HasErrorLabel("RetryableWriteError")) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, code := range []int{
			6, 7, 89, 9001, // HostUnreachable, HostNotFound, NetworkTimeout, SocketException
			43, 175, 237, // CursorNotFound, QueryPlanKilled, CursorKilled
			50, 262, // MaxTimeMSExpired, ExceededTimeLimit
			91, 189, 10107, 11600, 11602, 13435, 13436, // shutdown, step-down, not primary
		} {
			if se.HasErrorCode(code) {
				return true
			}
		}
		return false
	}
	// Anything else that is not the server's answer (a dropped connection
	// mid-batch, an I/O error) is worth another try.
	return true
}
