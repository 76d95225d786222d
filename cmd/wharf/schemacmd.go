package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse"
)

// cmdSchemaLifecycle runs the schema subcommands that compare, change or
// describe: plan, apply, infer, docs and jsonschema.
func cmdSchemaLifecycle(ctx context.Context, sub string, args []string, env Env, stdout, stderr io.Writer) error {
	switch sub {
	case "plan", "apply":
		return schemaPlan(ctx, sub == "apply", args, env, stdout, stderr)
	case "infer":
		return schemaInfer(ctx, args, env, stdout, stderr)
	case "docs":
		return schemaDocs(args, env, stdout, stderr)
	case "jsonschema":
		return schemaJSONSchema(args, env, stdout, stderr)
	}
	return usageError("schema: unknown subcommand %q", sub)
}

// schemaPlan prints what bringing the warehouse to the schema file takes
// and, for apply, does it. A refused change (a drop, a narrowing, a change
// of type) prints why and the manual steps on stderr, changes nothing, and
// exits 1.
func schemaPlan(ctx context.Context, apply bool, args []string, env Env, stdout, stderr io.Writer) error {
	name := "schema plan"
	if apply {
		name = "schema apply"
	}
	fs, cfgPath := flags(name, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if err := c.validate(need{warehouse: true}); err != nil {
		return err
	}
	sch, err := loadSchema(c)
	if err != nil {
		return err
	}
	pool, err := newPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	ac, err := awsConfig(ctx, env)
	if err != nil {
		return err
	}
	loader, err := warehouse.New(c.warehouseConfig(), pool, newS3(ac, c), sch, newLogger(c, stderr), nil)
	if err != nil {
		return badConfig("%v", err)
	}
	plan, err := loader.Plan(ctx)
	if err != nil {
		return err
	}
	if err := plan.WriteSQL(stdout); err != nil {
		return err
	}
	if len(plan.Refusals) > 0 {
		plan.WriteRefusals(stderr)
		return &exitError{1, fmt.Errorf("%d changes refused: the warehouse was not changed", len(plan.Refusals))}
	}
	if !apply {
		return nil
	}
	if err := loader.ApplyPlan(ctx, plan); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d changes to schema %s (%d tables in the schema file)\n", len(plan.Changes), c.Warehouse.Schema, len(sch.All()))
	return nil
}

func schemaInfer(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("schema infer", stderr)
	coll := fs.String("collection", "", "Mongo collection to sample (required)")
	n := fs.Int("sample", 1000, "documents to sample at random")
	table := fs.String("table", "", "table name (default: the collection's)")
	event := fs.String("event", "", "event type the table takes (default: the types the sampled documents carry at events.type_path, and the collection's name for those that carry none)")
	out := fs.String("o", "", "write the schema file here (default: stdout)")
	minShare := fs.Float64("min-share", 0.01, "share of documents a field must appear in to become a column")
	seed := fs.Uint64("seed", 0, "seed of the client-side sample (0: random)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *coll == "" {
		return usageError("schema infer: --collection is required")
	}
	if *n < 1 {
		return usageError("schema infer: --sample must be at least 1")
	}
	c, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if c.Mongo.URI == "" {
		return badConfig("mongo.uri is required for schema infer (or WHARF_MONGO_URI)")
	}
	if c.Mongo.Database == "" {
		return badConfig("mongo.database is required for schema infer")
	}
	client, err := newMongo(ctx, c)
	if err != nil {
		return err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	docs, how, err := backfill.SampleJSON(ctx, client.Database(c.Mongo.Database).Collection(*coll), *n, rand.New(rand.NewPCG(s, s>>1|1)))
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return &exitError{1, fmt.Errorf("schema infer: collection %s.%s is empty", c.Mongo.Database, *coll)}
	}
	inf, err := schema.Infer(docs, schema.InferOptions{Collection: *coll, Table: *table, Event: *event, Envelope: c.envelope(),
		Sampled: fmt.Sprintf("%s, %d asked", how, *n), MinShare: *minShare})
	if err != nil {
		return usageError("schema infer: %v", err)
	}
	if *out == "" {
		stdout.Write(inf.YAML)
	} else if err := os.WriteFile(*out, inf.YAML, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sampled %d documents of %s (%s): %d columns; event types %s", inf.Documents, *coll, how, inf.Columns, strings.Join(inf.Events, ", "))
	if inf.Untyped > 0 && *event == "" {
		fmt.Fprintf(stderr, " (%d documents without a type at %s take %s)", inf.Untyped, c.Events.TypePath, *coll)
	}
	fmt.Fprintln(stderr)
	for _, r := range inf.Rare {
		fmt.Fprintf(stderr, "too rare to decide (left to _extras): %s: %s\n", r.Path, r.Reason)
	}
	for _, r := range inf.Conflicts {
		fmt.Fprintf(stderr, "review: %s: %s\n", r.Path, r.Reason)
	}
	return nil
}

func schemaDocs(args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("schema docs", stderr)
	format := fs.String("format", "markdown", "markdown or html")
	out := fs.String("o", "", "write the dictionary here (default: stdout)")
	title := fs.String("title", "Data dictionary", "the document's title")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "markdown" && *format != "html" {
		return usageError("schema docs: --format must be markdown or html, not %q", *format)
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
	d := schema.Dialect(c.Warehouse.Dialect)
	if d == "" {
		d = schema.Postgres
	}
	dict := schema.Dictionary(sch, c.envelope(), d)
	var b bytes.Buffer
	if *format == "html" {
		err = schema.WriteHTML(&b, dict, *title)
	} else {
		err = schema.WriteMarkdown(&b, dict, *title)
	}
	if err != nil {
		return err
	}
	return writeOut(*out, b.Bytes(), stdout)
}

var unsafeFileRE = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func schemaJSONSchema(args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("schema jsonschema", stderr)
	dir := fs.String("o", "", "write EVENT.schema.json for every event type into this directory")
	event := fs.String("event", "", "print only this event type's schema")
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
	all := schema.JSONSchemas(sch, c.envelope())
	if *event != "" {
		b, ok := all[*event]
		if !ok {
			return usageError("schema jsonschema: no table takes events of type %q", *event)
		}
		_, err := stdout.Write(b)
		return err
	}
	names := make([]string, 0, len(all))
	for ev := range all {
		names = append(names, ev)
	}
	sort.Strings(names)
	if *dir == "" {
		for _, ev := range names {
			fmt.Fprintf(stdout, "// %s\n", ev)
			stdout.Write(all[ev])
		}
		return nil
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	for _, ev := range names {
		path := filepath.Join(*dir, unsafeFileRE.ReplaceAllString(ev, "_")+".schema.json")
		if err := os.WriteFile(path, all[ev], 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

func writeOut(path string, b []byte, stdout io.Writer) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return errors.Join(fmt.Errorf("write %s", path), err)
	}
	return nil
}
