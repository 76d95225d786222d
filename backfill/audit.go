package backfill

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wharfdata/wharf/schema"
)

// Ways CountHours counted.
const (
	CountAggregation = "aggregation" // $group by $dateTrunc on the server (MongoDB)
	CountClient      = "client"      // a projected scan, counted here (FerretDB: no date operators)
)

// CountHours counts, per hour of event time (UTC) in [since, until), the
// documents of the table's collections whose event type the table takes:
// what the warehouse table should hold per hour, dead letters aside.
//
// On MongoDB it is one aggregation per collection: the event time is the
// table's time path, else the envelope's, else the receive time serve stored
// (ReceivedAtField), else the _id's creation time, each
// read as wharf reads times (a BSON date, an ISO string, epoch seconds or
// milliseconds), grouped with $dateTrunc. A server that does not implement
// the date operators (FerretDB) answers NotImplemented; then the documents
// are read with only their type and time fields and counted here, through
// the same decoder as the backfill, so the times are read exactly as wharf
// reads them. It returns which way it counted.
func CountHours(ctx context.Context, db *mongo.Database, sch *schema.Schema, env schema.Envelope, table string, since, until time.Time, readPreference string) (map[time.Time]int64, string, error) {
	t := sch.Table(table)
	if t == nil || t.IsChild() {
		return nil, "", fmt.Errorf("--table: no parent table %q in the schema", table)
	}
	src, err := newSource(db, readPreference, 10_000)
	if err != nil {
		return nil, "", err
	}
	since, until = since.UTC(), until.UTC()
	out := map[time.Time]int64{}
	method := CountAggregation
	for _, coll := range t.Collections() {
		err := src.countHoursAggregate(ctx, coll, t, env, since, until, out)
		if notImplemented(err) {
			method = CountClient
			err = src.countHoursClient(ctx, coll, sch, t, env, since, until, out)
		}
		if err != nil {
			return nil, "", err
		}
	}
	return out, method, nil
}

// timeExpr is an aggregation expression reading the value at path as wharf
// reads a time, or null.
func timeExpr(path string) bson.D {
	f := "$" + path
	return bson.D{{Key: "$switch", Value: bson.D{
		{Key: "branches", Value: bson.A{
			bson.D{{Key: "case", Value: bson.D{{Key: "$eq", Value: bson.A{bson.D{{Key: "$type", Value: f}}, "date"}}}}, {Key: "then", Value: f}},
			bson.D{{Key: "case", Value: bson.D{{Key: "$eq", Value: bson.A{bson.D{{Key: "$type", Value: f}}, "string"}}}},
				{Key: "then", Value: bson.D{{Key: "$dateFromString", Value: bson.D{{Key: "dateString", Value: f}, {Key: "onError", Value: nil}, {Key: "onNull", Value: nil}}}}}},
			bson.D{{Key: "case", Value: bson.D{{Key: "$isNumber", Value: f}}},
				{Key: "then", Value: bson.D{{Key: "$toDate", Value: bson.D{{Key: "$cond", Value: bson.A{
					bson.D{{Key: "$gte", Value: bson.A{bson.D{{Key: "$abs", Value: f}}, 1e11}}}, f, bson.D{{Key: "$multiply", Value: bson.A{f, 1000}}},
				}}}}}}},
		}},
		{Key: "default", Value: nil},
	}}}
}

// typeMatch matches the documents whose event type the table takes: one of
// its events, or none at all when such a document takes the table's type
// (schema.Table.FallbackEvent). $in with null matches a missing field too,
// so no $or is needed.
func typeMatch(t *schema.Table, env schema.Envelope) bson.D {
	in := bson.A{}
	for _, e := range t.Events {
		in = append(in, e)
	}
	if t.FallbackEvent() != "" {
		in = append(in, nil)
	}
	return bson.D{{Key: env.TypePath, Value: bson.D{{Key: "$in", Value: in}}}}
}

// hourPipeline is the aggregation that counts a table's documents per hour.
func hourPipeline(t *schema.Table, env schema.Envelope, since, until time.Time) mongo.Pipeline {
	chain := bson.A{}
	if t.Time != "" {
		chain = append(chain, timeExpr(t.Time))
	}
	recv := "$" + ReceivedAtField
	chain = append(chain, timeExpr(env.TimePath),
		bson.D{{Key: "$cond", Value: bson.A{bson.D{{Key: "$eq", Value: bson.A{bson.D{{Key: "$type", Value: recv}}, "date"}}}, recv, nil}}},
		bson.D{{Key: "$convert", Value: bson.D{{Key: "input", Value: "$_id"}, {Key: "to", Value: "date"}, {Key: "onError", Value: nil}, {Key: "onNull", Value: nil}}}})
	timePath := env.TimePath
	if t.Time != "" {
		timePath = t.Time
	}
	return mongo.Pipeline{
		{{Key: "$match", Value: and(typeMatch(t, env), timeFilter(timePath, since, until))}},
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 0}, {Key: "t", Value: bson.D{{Key: "$ifNull", Value: chain}}}}}},
		{{Key: "$match", Value: bson.D{{Key: "t", Value: bson.D{{Key: "$gte", Value: since}, {Key: "$lt", Value: until}}}}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$dateTrunc", Value: bson.D{{Key: "date", Value: "$t"}, {Key: "unit", Value: "hour"}}}}}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	}
}

func (s *source) countHoursAggregate(ctx context.Context, coll string, t *schema.Table, env schema.Envelope, since, until time.Time, out map[time.Time]int64) error {
	cur, err := s.coll(coll).Aggregate(ctx, hourPipeline(t, env, since, until))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	var row struct {
		Hour time.Time `bson:"_id"`
		N    int64     `bson:"n"`
	}
	for cur.Next(ctx) {
		if err := cur.Decode(&row); err != nil {
			return fmt.Errorf("hourly counts of %s: %w", coll, err)
		}
		out[row.Hour.UTC()] += row.N
	}
	return cur.Err()
}

// countHoursClient reads each document's type and times only, and counts it
// by the hour of the event time the backfill would give it.
func (s *source) countHoursClient(ctx context.Context, coll string, sch *schema.Schema, t *schema.Table, env schema.Envelope, since, until time.Time, out map[time.Time]int64) error {
	proj := bson.D{{Key: env.TypePath, Value: 1}, {Key: env.TimePath, Value: 1}, {Key: ReceivedAtField, Value: 1}}
	timePath := env.TimePath
	if t.Time != "" && t.Time != env.TimePath {
		proj = append(proj, bson.E{Key: t.Time, Value: 1})
		timePath = t.Time
	}
	filter := and(typeMatch(t, env), timeFilter(timePath, since, until))
	cur, err := s.coll(coll).Find(ctx, filter, options.Find().SetProjection(proj).SetBatchSize(s.batchSize))
	if err != nil {
		return fmt.Errorf("hourly counts of %s: %w", coll, err)
	}
	defer cur.Close(ctx)
	dec := schema.NewDecoder(sch, env)
	var conv converter
	typePath, fallback := strings.Split(env.TypePath, "."), t.FallbackEvent()
	for cur.Next(ctx) {
		idv, err := cur.Current.LookupErr("_id")
		if err != nil {
			continue
		}
		body, _, err := conv.eventJSON(cur.Current, typePath, fallback)
		if err != nil {
			continue
		}
		id, _ := idString(idv)
		if id == "" {
			id = "?"
		}
		recv, _ := receivedAt(cur.Current, idv, time.Now())
		ev, err := dec.Decode(body, id, recv)
		if err != nil {
			continue // a dead letter: it makes no row
		}
		et, err := dec.EventTime(ev, t)
		if err != nil || et.Before(since) || !et.Before(until) {
			continue
		}
		out[et.Truncate(time.Hour)]++
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("hourly counts of %s: %w", coll, err)
	}
	return nil
}

// HourDiff is one hour whose counts differ.
type HourDiff struct {
	Hour      time.Time `json:"hour"`
	Mongo     int64     `json:"mongo"`
	Warehouse int64     `json:"warehouse"`
}

// Audit compares, hour by hour, the documents in Mongo with the rows in the
// warehouse for one table (`wharf audit`).
type Audit struct {
	Table            string
	From, To         time.Time  // the hours audited: From ≤ hour < To
	Diffs            []HourDiff // the hours that differ, in order
	Mongo, Warehouse int64      // documents and rows in the whole range
	Method           string     // how Mongo counted (CountHours)
}

// Audit counts the job's table in Mongo (CountHours) and in the warehouse
// per hour of [from, to), and returns the hours that differ.
func (j *Job) Audit(ctx context.Context, from, to time.Time) (Audit, error) {
	mongo, method, err := CountHours(ctx, j.DB, j.Schema, j.Envelope, j.Config.Table, from, to, j.Config.ReadPreference)
	if err != nil {
		return Audit{}, err
	}
	wh, err := j.Warehouse.HourlyCounts(ctx, j.Config.Table, from, to)
	if err != nil {
		return Audit{}, err
	}
	a := Audit{Table: j.Config.Table, From: from, To: to, Method: method}
	hours := map[time.Time]bool{}
	for h, n := range mongo {
		hours[h] = true
		a.Mongo += n
	}
	for h, n := range wh {
		hours[h] = true
		a.Warehouse += n
	}
	for _, h := range slices.SortedFunc(maps.Keys(hours), time.Time.Compare) {
		if mongo[h] != wh[h] {
			a.Diffs = append(a.Diffs, HourDiff{Hour: h, Mongo: mongo[h], Warehouse: wh[h]})
		}
	}
	return a, nil
}

// RepairWindows merges the hours where Mongo has more than the warehouse
// into windows of consecutive hours: what `wharf audit --repair` backfills
// (Config.Windows).
func RepairWindows(diffs []HourDiff) []Window {
	var ws []Window
	for _, d := range diffs {
		if d.Mongo <= d.Warehouse {
			continue
		}
		end := d.Hour.Add(time.Hour)
		if n := len(ws); n > 0 && ws[n-1].To.Equal(d.Hour) {
			ws[n-1].To = end
			continue
		}
		ws = append(ws, Window{From: d.Hour, To: end})
	}
	return ws
}
