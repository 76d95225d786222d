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

	"github.com/wharfdata/wharf/internal/sqsbatch"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

func cmdLoad(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("load", stderr)
	table := fs.String("table", "", "load only this table (default: every table)")
	retry := fs.Bool("retry-quarantined", false, "take the quarantined files (of --table, or every table) out of quarantine first, and load them again")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := c.validate(need{s3: true, warehouse: true}); err != nil {
		return err
	}
	sch, err := loadSchema(c)
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
	log := newLogger(c, stderr)
	ac, err := awsConfig(ctx, env)
	if err != nil {
		return err
	}
	pool, err := newPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	loader, err := warehouse.New(c.warehouseConfig(), pool, newS3(ac, c), sch, log, nil)
	if err != nil {
		return badConfig("%v", err)
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

func cmdSchema(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("schema: want check, plan, apply, ddl, infer, docs or jsonschema")
	}
	sub := args[0]
	switch sub {
	case "plan", "apply", "infer", "docs", "jsonschema":
		return cmdSchemaLifecycle(ctx, sub, args[1:], env, stdout, stderr)
	}
	fs, cfgPath := flags("schema "+sub, stderr)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	switch sub {
	case "check":
		if err := c.validate(need{}); err != nil {
			return err
		}
		sch, err := loadSchema(c)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d tables, %d event types: ok\n", c.Schema, len(sch.All()), len(sch.EventTypes()))
		return nil
	case "ddl":
		if err := c.validate(need{}); err != nil {
			return err
		}
		sch, err := loadSchema(c)
		if err != nil {
			return err
		}
		d := schema.Dialect(c.Warehouse.Dialect)
		for _, stmt := range schema.LedgerSQL(d, c.Warehouse.Schema) {
			fmt.Fprintf(stdout, "%s;\n\n", stmt)
		}
		for _, t := range sch.All() {
			fmt.Fprintf(stdout, "%s;\n\n", schema.CreateTableSQL(t, d, c.Warehouse.Schema))
		}
		return nil
	}
	return usageError("schema: unknown subcommand %q (want check, plan, apply, ddl, infer, docs or jsonschema)", sub)
}

// cmdFlatten prints, for each JSON event on stdin, the rows it becomes, or
// why it would be dead-lettered.
func cmdFlatten(ctx context.Context, args []string, env Env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("flatten", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := c.validate(need{}); err != nil {
		return err
	}
	sch, err := loadSchema(c)
	if err != nil {
		return err
	}
	dec := schema.NewDecoder(sch, c.envelope())
	in := bufio.NewReader(stdin)
	var sc fastjson.Scanner
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	sc.InitBytes(data)
	out := json.NewEncoder(stdout)
	out.SetEscapeHTML(false)
	bad, n := 0, 0
	for sc.Next() {
		n++
		body := sc.Value().MarshalTo(nil)
		ev, err := dec.Decode(body, fmt.Sprintf("stdin-%d", n), time.Now())
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

// cmdSend sends JSON lines to the queue in batches of 10. A line that is not
// a JSON object is reported with its line number and not sent.
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
	batches := make(chan []sqsbatch.Entry)
	var sent, failed int64
	var sendErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		sent, failed, sendErr = sqsbatch.SendAll(ctx, newSQS(ac), c.SQS.QueueURL, *workers, batches)
	}()
	lines, rejected, readErr := sendLines(stdin, stderr, batches)
	close(batches)
	<-done
	if readErr != nil {
		return fmt.Errorf("read line %d: %w", lines+1, readErr)
	}
	fmt.Fprintf(stdout, "sent %d messages; %d lines rejected; %d failed\n", sent, rejected, failed)
	if sendErr != nil {
		return sendErr
	}
	if rejected > 0 {
		return &exitError{1, fmt.Errorf("%d lines were not JSON objects", rejected)}
	}
	return nil
}

// sendLines reads JSON lines from r into batches, naming on stderr each line
// that is not a JSON object. It returns the lines read and rejected.
func sendLines(r io.Reader, stderr io.Writer, batches chan<- []sqsbatch.Entry) (lines, rejected int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 2<<20)
	var b sqsbatch.Batches
	for sc.Scan() {
		lines++
		text := sc.Text()
		if len(text) == 0 {
			continue
		}
		if v, err := fastjson.Parse(text); err != nil || v.Type() != fastjson.TypeObject {
			rejected++
			why := "not a JSON object"
			if err != nil {
				why = "not JSON: " + err.Error()
			}
			fmt.Fprintf(stderr, "line %d: %s; not sent\n", lines, why)
			continue
		}
		if full := b.Add(sqsbatch.Entry{Body: text}); full != nil {
			batches <- full
		}
	}
	if rest := b.Take(); rest != nil {
		batches <- rest
	}
	return lines, rejected, sc.Err()
}
