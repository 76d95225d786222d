package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// How sampleCollection drew its sample.
const (
	sampledByServer    = "$sample"
	sampledByReservoir = "reservoir sample over a full scan"
)

// sampleCollection returns up to n documents of coll drawn at random, as
// relaxed extended JSON decoded with UseNumber. It asks the server for
// $sample (MongoDB draws it from its storage engine); a server that
// answers that $sample is not implemented (FerretDB) gets a full scan with
// a reservoir sample (Algorithm R) on this side, which reads every
// document once and keeps a uniform sample of n. Never the first n.
func sampleCollection(ctx context.Context, coll *mongo.Collection, n int, rnd *rand.Rand) ([]map[string]any, string, error) {
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{{{Key: "$sample", Value: bson.D{{Key: "size", Value: n}}}}})
	if err == nil {
		var raws []bson.Raw
		for cur.Next(ctx) {
			raws = append(raws, append(bson.Raw(nil), cur.Current...))
		}
		err = cur.Err()
		cur.Close(ctx)
		if err == nil {
			docs, err := decodeDocs(raws)
			return docs, sampledByServer, err
		}
	}
	if !notImplemented(err) {
		return nil, "", fmt.Errorf("sample %s: %w", coll.Name(), err)
	}
	cur, err = coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, "", fmt.Errorf("scan %s: %w", coll.Name(), err)
	}
	defer cur.Close(ctx)
	raws, err := reservoir(n, rnd, func() (bson.Raw, bool) {
		if !cur.Next(ctx) {
			return nil, false
		}
		return append(bson.Raw(nil), cur.Current...), true
	})
	if err == nil {
		err = cur.Err()
	}
	if err != nil {
		return nil, "", fmt.Errorf("scan %s: %w", coll.Name(), err)
	}
	docs, err := decodeDocs(raws)
	return docs, sampledByReservoir, err
}

// reservoir keeps a uniform random sample of n of the items next yields.
func reservoir[T any](n int, rnd *rand.Rand, next func() (T, bool)) ([]T, error) {
	var out []T
	seen := 0
	for {
		x, ok := next()
		if !ok {
			return out, nil
		}
		seen++
		if len(out) < n {
			out = append(out, x)
			continue
		}
		if j := rnd.IntN(seen); j < n {
			out[j] = x
		}
	}
}

// notImplemented reports a server's answer that a command or stage is not
// implemented (FerretDB: code 238) or not recognized (40324).
func notImplemented(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && (ce.Code == 238 || ce.Code == 40324 || ce.Name == "NotImplemented")
}

func decodeDocs(raws []bson.Raw) ([]map[string]any, error) {
	docs := make([]map[string]any, 0, len(raws))
	for _, r := range raws {
		b, err := bson.MarshalExtJSON(r, false, false)
		if err != nil {
			return nil, fmt.Errorf("document to JSON: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			return nil, fmt.Errorf("document to JSON: %w", err)
		}
		docs = append(docs, d)
	}
	return docs, nil
}
