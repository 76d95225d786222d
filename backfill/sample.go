package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// How Sample drew its sample.
const (
	SampledByServer    = "$sample"
	SampledByReservoir = "reservoir sample over a full scan"
)

// SampleOptions shape a Sample.
type SampleOptions struct {
	Projection bson.D     // the fields to read; nil reads whole documents
	BatchSize  int32      // of the fallback scan; 0 is the driver's
	Rand       *rand.Rand // the reservoir's; nil is the global source
	// Keep, when set, sees every document the fallback scan reads and says
	// whether it may be sampled (so that a caller learns about every
	// document, not only the sampled ones). $sample does not call it.
	Keep func(bson.Raw) bool
}

// Sample returns up to n documents of coll drawn at random, and how it drew
// them. It asks the server for $sample (MongoDB draws it from its storage
// engine); a server that answers that $sample is not implemented
// (FerretDB) gets a full scan with a reservoir sample (Algorithm R) on this
// side, which reads every document once and keeps a uniform sample of n.
// Never the first n.
func Sample(ctx context.Context, coll *mongo.Collection, n int, o SampleOptions) ([]bson.Raw, string, error) {
	pipeline := mongo.Pipeline{{{Key: "$sample", Value: bson.D{{Key: "size", Value: n}}}}}
	if o.Projection != nil {
		pipeline = append(pipeline, bson.D{{Key: "$project", Value: o.Projection}})
	}
	cur, err := coll.Aggregate(ctx, pipeline)
	if err == nil {
		var raws []bson.Raw
		for cur.Next(ctx) {
			raws = append(raws, append(bson.Raw(nil), cur.Current...))
		}
		err = cur.Err()
		cur.Close(ctx)
		if err == nil {
			return raws, SampledByServer, nil
		}
	}
	if !notImplemented(err) {
		return nil, "", fmt.Errorf("sample %s: %w", coll.Name(), err)
	}
	raws, err := scanSample(ctx, coll, n, o)
	if err != nil {
		return nil, "", fmt.Errorf("scan %s: %w", coll.Name(), err)
	}
	return raws, SampledByReservoir, nil
}

// scanSample reads every document of coll (no sort, no filter: one pass)
// and keeps a reservoir sample of n of those o.Keep takes.
func scanSample(ctx context.Context, coll *mongo.Collection, n int, o SampleOptions) ([]bson.Raw, error) {
	fo := options.Find()
	if o.Projection != nil {
		fo.SetProjection(o.Projection)
	}
	if o.BatchSize > 0 {
		fo.SetBatchSize(o.BatchSize)
	}
	cur, err := coll.Find(ctx, bson.D{}, fo)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	intN := rand.IntN
	if o.Rand != nil {
		intN = o.Rand.IntN
	}
	raws := reservoir(n, intN, func() (bson.Raw, bool) {
		for cur.Next(ctx) {
			if o.Keep == nil || o.Keep(cur.Current) {
				return append(bson.Raw(nil), cur.Current...), true
			}
		}
		return nil, false
	})
	return raws, cur.Err()
}

// reservoir keeps a uniform random sample of n of the items next yields
// (Algorithm R); intN(k) draws from [0, k).
func reservoir[T any](n int, intN func(int) int, next func() (T, bool)) []T {
	var out []T
	seen := 0
	for {
		x, ok := next()
		if !ok {
			return out
		}
		seen++
		if len(out) < n {
			out = append(out, x)
			continue
		}
		if j := intN(seen); j < n {
			out[j] = x
		}
	}
}

// SampleJSON is Sample of whole documents, each as relaxed extended JSON
// decoded with UseNumber: what schema.Infer reads.
func SampleJSON(ctx context.Context, coll *mongo.Collection, n int, rnd *rand.Rand) ([]map[string]any, string, error) {
	raws, how, err := Sample(ctx, coll, n, SampleOptions{Rand: rnd})
	if err != nil {
		return nil, "", err
	}
	docs := make([]map[string]any, 0, len(raws))
	for _, r := range raws {
		b, err := bson.MarshalExtJSON(r, false, false)
		if err != nil {
			return nil, "", fmt.Errorf("document to JSON: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			return nil, "", fmt.Errorf("document to JSON: %w", err)
		}
		docs = append(docs, d)
	}
	return docs, how, nil
}

// notImplemented reports whether the server refused a command or stage it
// does not implement: NotImplemented (238; FerretDB answers so for $sample
// and the date operators), CommandNotSupported (115), or an unrecognized
// pipeline stage (40324).
func notImplemented(err error) bool {
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorCode(238) || se.HasErrorCode(115) || se.HasErrorCode(40324)) {
		return true
	}
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Name == "NotImplemented"
}
