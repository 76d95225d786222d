package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/valyala/fastjson"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/sqsbatch"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

func cmdLoad(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("load", stderr)
	table := fs.String("table", "", "load only this table (default: every table)")
	retry := fs.Bool("retry-quarantined", false, "take the quarantined files (of --table, or every table) out of quarantine first, and load them again")
	c, sch, err := setupSchema(fs, cfgPath, args, env, need{s3: true, warehouse: true})
	if err != nil {
		return err
	}
	var tables []string
	if *table != "" {
		if sch.Table(*table) == nil {
			return usageError("--table: no table %q in %s", *table, c.Schema)
		}
		tables = append(tables, *table)
	}
	loader, _, release, err := c.openLoader(ctx, env, newLogger(c, stderr), sch)
	defer release()
	if err != nil {
		return err
	}
	if *retry {
		n, err := loader.ReleaseQuarantined(ctx, tables...)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "released %d quarantined files\n", n)
	}
	res, err := loader.Load(ctx, tables...)
	for name, r := range res.Tables {
		fmt.Fprintf(stdout, "%-32s files %6d  rows in %9d  loaded %9d  duplicates %7d  late files %4d  quarantined %4d\n",
			name, r.Files, r.RowsIn, r.Rows, r.Duplicates, r.Late, r.Quarantined)
	}
	held, qerr := loader.Quarantined(ctx, tables...)
	for _, f := range held {
		fmt.Fprintf(stdout, "quarantined %s (%s, since %s): %s\n", f.Key, f.Table, f.At.Format(time.RFC3339), scrub(f.Reason, c.secrets))
	}
	if len(held) > 0 {
		fmt.Fprintf(stdout, "%d files in quarantine: fix or upgrade, then wharf load --retry-quarantined\n", len(held))
	}
	return errors.Join(err, qerr)
}

// openLoader connects the warehouse loader of sch and the S3 store it reads
// from; release lets them go, also after an error.
func (c *Config) openLoader(ctx context.Context, env Env, log *zap.Logger, sch *schema.Schema) (*warehouse.Loader, *s3store.Store, func(), error) {
	ac, err := awsConfig(ctx, env)
	if err != nil {
		return nil, nil, func() {}, err
	}
	store := newS3(ac, c)
	pool, err := newPool(ctx, c)
	if err != nil {
		return nil, nil, func() {}, err
	}
	loader, err := warehouse.New(c.warehouseConfig(), pool, store, sch, log, nil)
	if err != nil {
		return nil, nil, pool.Close, badConfig("%v", err)
	}
	return loader, store, pool.Close, nil
}

// cmdFlatten prints, for each JSON event on stdin, the rows it becomes, or
// why it would be dead-lettered.
func cmdFlatten(ctx context.Context, args []string, env Env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("flatten", stderr)
	c, sch, err := setupSchema(fs, cfgPath, args, env, need{})
	if err != nil {
		return err
	}
	dec := schema.NewDecoder(sch, c.envelope())
	data, err := io.ReadAll(bufio.NewReader(stdin))
	if err != nil {
		return err
	}
	var sc fastjson.Scanner
	sc.InitBytes(data)
	out := json.NewEncoder(stdout)
	out.SetEscapeHTML(false)
	bad, n := 0, 0
	for sc.Next() {
		n++
		ev, err := dec.Decode(sc.Value().MarshalTo(nil), fmt.Sprintf("stdin-%d", n), time.Now())
		var rows []schema.Row
		if err == nil {
			rows, err = dec.Flatten(ev, nil)
		}
		if err != nil {
			bad++
			out.Encode(map[string]string{"deadletter": schema.Reason(err), "error": err.Error()})
			continue
		}
		for _, r := range rows {
			if err := out.Encode(r); err != nil {
				return err
			}
		}
	}
	if err := sc.Error(); err != nil {
		return usageError("flatten: input event %d is not JSON: %v", n+1, err)
	}
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d of %d events would be dead-lettered", bad, n)}
	}
	return nil
}

// cmdSend sends JSON lines to the queue in batches of 10 (sqsbatch.SendLines).
// A line that is not a JSON object is reported with its line number and not
// sent.
func cmdSend(ctx context.Context, args []string, env Env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("send", stderr)
	workers := fs.Int("workers", 8, "concurrent SendMessageBatch calls")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if c.SQS.QueueURL == "" {
		return badConfig("sqs.queue_url is required (or WHARF_SQS_QUEUE_URL)")
	}
	if *workers < 1 {
		return usageError("--workers must be at least 1")
	}
	ac, err := awsConfig(ctx, env)
	if err != nil {
		return err
	}
	res, err := sqsbatch.SendLines(ctx, newSQS(ac), c.SQS.QueueURL, *workers, stdin, func(line int, why string) {
		fmt.Fprintf(stderr, "line %d: %s; not sent\n", line, why)
	})
	fmt.Fprintf(stdout, "sent %d messages; %d lines rejected; %d failed\n", res.Sent, res.Rejected, res.Failed)
	if err == nil && res.Rejected > 0 {
		err = &exitError{1, fmt.Errorf("%d lines were not JSON objects", res.Rejected)}
	}
	return err
}
