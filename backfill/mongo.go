package backfill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
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

// sampleKeys returns about n random _ids. On MongoDB it runs $sample, which
// reads n random documents by the index; where $sample is not implemented
// (FerretDB), it reads every _id once (projected, unsorted) and keeps a
// reservoir sample, which also gives the exact count and the type classes
// present.
func (s *source) sampleKeys(ctx context.Context, coll string, n int) (keySample, error) {
	c := s.coll(coll)
	cur, err := c.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$sample", Value: bson.D{{Key: "size", Value: n}}}},
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}},
	})
	if err == nil {
		var ks keySample
		for cur.Next(ctx) {
			if v, err := cur.Current.LookupErr("_id"); err == nil && boundaryOK(v) {
				ks.keys = append(ks.keys, keyOf(v))
			}
		}
		err = cur.Err()
		cur.Close(ctx)
		if err == nil {
			ks.total, err = s.estimatedCount(ctx, coll)
			return ks, err
		}
	}
	if !notImplemented(err) {
		return keySample{}, fmt.Errorf("sample _id of %s: %w", coll, err)
	}
	return s.scanKeys(ctx, coll, n)
}

// scanKeys reads every _id (no sort, no filter: one pass over the collection)
// and keeps a reservoir sample of n.
func (s *source) scanKeys(ctx context.Context, coll string, n int) (keySample, error) {
	cur, err := s.coll(coll).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(max(s.batchSize, 10_000)))
	if err != nil {
		return keySample{}, fmt.Errorf("scan _id of %s: %w", coll, err)
	}
	defer cur.Close(ctx)
	var ks keySample
	seen := map[string]bool{}
	for cur.Next(ctx) {
		v, err := cur.Current.LookupErr("_id")
		if err != nil {
			continue
		}
		ks.total++
		seen[typeAlias(v.Type)] = true
		if !boundaryOK(v) {
			continue
		}
		if len(ks.keys) < n {
			ks.keys = append(ks.keys, keyOf(v))
		} else if j := rand.Int64N(ks.total); j < int64(n) {
			ks.keys[j] = keyOf(v)
		}
	}
	if err := cur.Err(); err != nil {
		return keySample{}, fmt.Errorf("scan _id of %s: %w", coll, err)
	}
	if !seen[""] { // a type without a $type name: ask for every type
		ks.types = slices.Sorted(maps.Keys(seen))
	}
	return ks, nil
}

// notImplemented reports whether the server refused a command or stage it
// does not implement (MongoDB error code 238, NotImplemented; FerretDB
// answers so for $sample and the date operators).
func notImplemented(err error) bool {
	var se mongo.ServerError
	if errors.As(err, &se) {
		return se.HasErrorCode(238) || se.HasErrorCode(115) // NotImplemented, CommandNotSupported
	}
	return false
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
