package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/schema"
)

// freshnessResult is what `freshness` prints. Latencies are in seconds from
// each row's event_time.
type freshnessResult struct {
	Table      string  `json:"table"`
	Files      int     `json:"files"`
	RowsInFile int     `json:"rows_in_files"`
	Events     int     `json:"events"`
	Duplicates int     `json:"duplicates"` // rows whose event id was already in an earlier file
	NotLoaded  int     `json:"not_loaded"` // events whose files the ledger does not name
	S3         summary `json:"s3"`         // file named (its ULID) − event time
	Warehouse  summary `json:"warehouse"`  // ledger loaded_at − event time
	// From serve's log, when -serve-log is given:
	S3Put           *summary `json:"s3_put,omitempty"`           // put finished − event time
	WarehouseCommit *summary `json:"warehouse_commit,omitempty"` // merge committed − event time
}

// cmdFreshness measures, for every row of one table written under an S3
// prefix, how long after its event time it reached S3 and the warehouse.
//
// The S3 time of a row is the time in its file's ULID name: the batcher
// names a file when the encode is done, just before the put. The warehouse
// time is the file's loaded_at in the wharf_loads ledger, which the loader
// writes as now() AT TIME ZONE 'UTC' in the merge transaction: PostgreSQL's
// now() is when that transaction began (before the files were read and
// merged), so it is early by the length of the merge. With -serve-log (the
// JSON log of `wharf serve`) the result also holds the later, truer times:
// when the put finished ("flush" lines) and when the merge committed (the
// "loaded" line that follows the transaction's start, for its table).
//
// An event that reached several files (a redelivery) counts once, at its
// earliest file.
func cmdFreshness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("freshness", stderr)
	dsn := fs.String("dsn", "", "warehouse DSN (required)")
	dbSchema := fs.String("schema", "", "warehouse schema of the ledger (required)")
	bucket := fs.String("bucket", "", "S3 bucket (required)")
	prefix := fs.String("prefix", "", "S3 prefix wharf wrote under, ending with / (required)")
	pathStyle := fs.Bool("path-style", false, "S3 path-style addressing (fauxqs)")
	schemaFile := fs.String("schema-file", "", "wharf's schema file (tables.yaml) (required)")
	table := fs.String("table", "page_views", "table to measure")
	serveLog := fs.String("serve-log", "", "JSON log of wharf serve, for put and commit times")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" || *dbSchema == "" || *bucket == "" || *prefix == "" || *schemaFile == "" {
		return errors.New("freshness: -dsn, -schema, -bucket, -prefix and -schema-file are required")
	}
	data, err := os.ReadFile(*schemaFile)
	if err != nil {
		return fmt.Errorf("freshness: %w", err)
	}
	sch, err := schema.Parse(data)
	if err != nil {
		return fmt.Errorf("freshness: schema %s: %w", *schemaFile, err)
	}
	t := sch.Table(*table)
	if t == nil {
		return fmt.Errorf("freshness: schema %s has no table %q", *schemaFile, *table)
	}
	fr := &freshness{t: t, first: map[string]*reach{}, res: freshnessResult{Table: t.Name}}
	if fr.loadedAt, err = ledger(ctx, *dsn, *dbSchema, t.Name); err != nil {
		return err
	}
	if *serveLog != "" {
		if fr.log, err = readServeLog(*serveLog); err != nil {
			return err
		}
	}
	store, err := newStore(ctx, *bucket, *pathStyle)
	if err != nil {
		return err
	}
	objs, err := store.List(ctx, *prefix+t.Name+"/", "")
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return fmt.Errorf("freshness: no files under s3://%s/%s%s/", *bucket, *prefix, t.Name)
	}
	fr.res.Files = len(objs)
	for _, o := range objs {
		body, err := store.Get(ctx, o.Key)
		if err != nil {
			return err
		}
		if err := fr.file(o.Key, body); err != nil {
			return err
		}
	}
	return printJSON(stdout, fr.result())
}

// reach is when one event first reached S3 and the warehouse.
type reach struct {
	event, s3, wh, put, commit time.Time
}

// freshness gathers, per event id, the earliest time it reached S3 and the
// warehouse.
type freshness struct {
	t        *schema.Table
	loadedAt map[string]time.Time // per file: the ledger's loaded_at
	log      *serveLogTimes       // nil without -serve-log
	first    map[string]*reach
	res      freshnessResult
}

// file reads the rows of the Parquet file at key.
func (fr *freshness) file(key string, body []byte) error {
	id, err := ulid.Parse(strings.TrimSuffix(path.Base(key), ".parquet"))
	if err != nil {
		return fmt.Errorf("freshness: file %s is not named by a ULID: %w", key, err)
	}
	named := ulid.Time(id.Time())
	wh, loaded := fr.loadedAt[key]
	var put, commit time.Time
	if fr.log != nil {
		put = fr.log.put[key]
		if loaded {
			commit = fr.log.commitAfter(fr.t.Name, wh)
		}
	}
	r, err := pq.Open(body, fr.t)
	if err != nil {
		return fmt.Errorf("freshness: %s: %w", key, err)
	}
	idCol, timeCol := fr.t.Column(schema.ColEventID), fr.t.Column(schema.ColEventTime)
	vals := make([]schema.Value, len(fr.t.Columns))
	for {
		err := r.Read(vals)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.Close()
			return fmt.Errorf("freshness: %s: %w", key, err)
		}
		fr.res.RowsInFile++
		eid := vals[idCol].S
		p := fr.first[eid]
		if p == nil {
			p = &reach{event: schema.TimeOf(vals[timeCol])}
			fr.first[eid] = p
		} else {
			fr.res.Duplicates++
		}
		p.s3 = earliest(p.s3, named)
		if loaded {
			p.wh = earliest(p.wh, wh)
			p.commit = earliest(p.commit, commit)
		}
		p.put = earliest(p.put, put)
	}
	if err := r.Close(); err != nil {
		return fmt.Errorf("freshness: %s: %w", key, err)
	}
	return nil
}

// result summarizes the latencies of the events read.
func (fr *freshness) result() freshnessResult {
	res := fr.res
	var s3, wh, put, commit []float64
	for _, p := range fr.first {
		s3 = append(s3, p.s3.Sub(p.event).Seconds())
		if p.wh.IsZero() {
			res.NotLoaded++
		} else {
			wh = append(wh, p.wh.Sub(p.event).Seconds())
		}
		if !p.put.IsZero() {
			put = append(put, p.put.Sub(p.event).Seconds())
		}
		if !p.commit.IsZero() {
			commit = append(commit, p.commit.Sub(p.event).Seconds())
		}
	}
	res.Events = len(fr.first)
	res.S3, res.Warehouse = summarize(s3), summarize(wh)
	if fr.log != nil {
		sp, sc := summarize(put), summarize(commit)
		res.S3Put, res.WarehouseCommit = &sp, &sc
	}
	return res
}

// earliest returns the earlier of two times, a zero time counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// ledger reads loaded_at of every file of table from the wharf_loads ledger.
// loaded_at is a timestamp without time zone holding UTC; extract(epoch)
// reads such a value as UTC whatever the session's TimeZone.
func ledger(ctx context.Context, dsn, dbSchema, table string) (map[string]time.Time, error) {
	conn, err := newPG(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := fmt.Sprintf(`SELECT file_key, extract(epoch FROM loaded_at)::float8 FROM %s WHERE table_name = $1`,
		schema.QualifiedName(dbSchema, schema.LedgerTable))
	rows, err := conn.Query(ctx, q, table)
	if err != nil {
		return nil, fmt.Errorf("freshness: read ledger: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var key string
		var epoch float64
		if err := rows.Scan(&key, &epoch); err != nil {
			return nil, fmt.Errorf("freshness: read ledger: %w", err)
		}
		out[key] = time.UnixMicro(int64(epoch*1e6 + 0.5))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("freshness: read ledger: %w", err)
	}
	return out, nil
}

// serveLogTimes is what freshness reads from serve's JSON log.
type serveLogTimes struct {
	put    map[string]time.Time   // file key → when its put finished
	loaded map[string][]time.Time // table → when each merge committed, sorted
}

// zapTimeLayout is zap's ISO 8601 time encoder.
const zapTimeLayout = "2006-01-02T15:04:05.000Z0700"

func readServeLog(name string) (*serveLogTimes, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("freshness: %w", err)
	}
	defer f.Close()
	out := &serveLogTimes{put: map[string]time.Time{}, loaded: map[string][]time.Time{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var line struct {
			TS    string `json:"ts"`
			Msg   string `json:"msg"`
			File  string `json:"file"`
			Table string `json:"table"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || (line.Msg != "flush" && line.Msg != "loaded") {
			continue
		}
		ts, err := time.Parse(zapTimeLayout, line.TS)
		if err != nil {
			return nil, fmt.Errorf("freshness: %s: time %q: %w", name, line.TS, err)
		}
		switch line.Msg {
		case "flush":
			out.put[line.File] = ts
		case "loaded":
			out.loaded[line.Table] = append(out.loaded[line.Table], ts)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("freshness: %s: %w", name, err)
	}
	for _, ts := range out.loaded {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	}
	if len(out.put) == 0 {
		return nil, fmt.Errorf("freshness: %s has no flush lines (is it serve's JSON log?)", name)
	}
	return out, nil
}

// commitAfter returns when the merge that began at began committed: the
// first "loaded" line of the table at or after it (the log's millisecond
// precision allowed for), or a zero time.
func (s *serveLogTimes) commitAfter(table string, began time.Time) time.Time {
	ts := s.loaded[table]
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].Add(time.Millisecond).Before(began) })
	if i == len(ts) {
		return time.Time{}
	}
	return ts[i]
}
