package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/wharfdata/wharf/backfill"
	"github.com/wharfdata/wharf/schema"
)

func cmdSchema(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("schema: want check, plan, apply, ddl, infer, docs or jsonschema")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "plan", "apply":
		return schemaPlan(ctx, sub == "apply", args, env, stdout, stderr)
	case "infer":
		return schemaInfer(ctx, args, env, stdout, stderr)
	case "docs":
		return schemaDocs(args, env, stdout, stderr)
	case "jsonschema":
		return schemaJSONSchema(args, env, stdout, stderr)
	case "check", "ddl":
	default:
		return usageError("schema: unknown subcommand %q (want check, plan, apply, ddl, infer, docs or jsonschema)", sub)
	}
	fs, cfgPath := flags("schema "+sub, stderr)
	c, sch, err := setupSchema(fs, cfgPath, args, env, need{})
	if err != nil {
		return err
	}
	if sub == "check" {
		fmt.Fprintf(stdout, "%s: %d tables, %d event types: ok\n", c.Schema, len(sch.All()), len(sch.EventTypes()))
		return nil
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
	c, sch, err := setupSchema(fs, cfgPath, args, env, need{warehouse: true})
	if err != nil {
		return err
	}
	loader, _, release, err := c.openLoader(ctx, env, newLogger(c, stderr), sch)
	defer release()
	if err != nil {
		return err
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

// schemaInfer writes a schema file from a random sample of a collection
// (backfill.SampleJSON, schema.Infer).
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
	switch {
	case *coll == "":
		return usageError("schema infer: --collection is required")
	case *n < 1:
		return usageError("schema infer: --sample must be at least 1")
	}
	c, err := loadConfig(*cfgPath, env)
	switch {
	case err != nil:
		return err
	case c.Mongo.URI == "":
		return badConfig("mongo.uri is required for schema infer (or WHARF_MONGO_URI)")
	case c.Mongo.Database == "":
		return badConfig("mongo.database is required for schema infer")
	}
	client, err := newMongo(ctx, c)
	if err != nil {
		return err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	s := cmp.Or(*seed, uint64(time.Now().UnixNano()))
	docs, how, err := backfill.SampleJSON(ctx, client.Database(c.Mongo.Database).Collection(*coll), *n, rand.New(rand.NewPCG(s, s>>1|1)))
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return &exitError{1, fmt.Errorf("schema infer: collection %s.%s is empty", c.Mongo.Database, *coll)}
	}
	opt := schema.InferOptions{Collection: *coll, Table: *table, Event: *event, Envelope: c.envelope(), Sampled: fmt.Sprintf("%s, %d asked", how, *n), MinShare: *minShare}
	inf, err := schema.Infer(docs, opt)
	if err != nil {
		return usageError("schema infer: %v", err)
	}
	if err := writeOut(*out, inf.YAML, stdout); err != nil {
		return err
	}
	inf.WriteReport(stderr, opt, how)
	return nil
}

func schemaDocs(args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("schema docs", stderr)
	format := fs.String("format", "markdown", "markdown or html")
	out := fs.String("o", "", "write the dictionary here (default: stdout)")
	title := fs.String("title", "Data dictionary", "the document's title")
	c, sch, err := setupSchema(fs, cfgPath, args, env, need{})
	if err != nil {
		return err
	}
	write := map[string]func(io.Writer, []schema.DictTable, string) error{"markdown": schema.WriteMarkdown, "html": schema.WriteHTML}[*format]
	if write == nil {
		return usageError("schema docs: --format must be markdown or html, not %q", *format)
	}
	var b bytes.Buffer
	if err := write(&b, schema.Dictionary(sch, c.envelope(), cmp.Or(schema.Dialect(c.Warehouse.Dialect), schema.Postgres)), *title); err != nil {
		return err
	}
	return writeOut(*out, b.Bytes(), stdout)
}

var unsafeFileRE = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func schemaJSONSchema(args []string, env Env, stdout, stderr io.Writer) error {
	fs, cfgPath := flags("schema jsonschema", stderr)
	dir := fs.String("o", "", "write EVENT.schema.json for every event type into this directory")
	event := fs.String("event", "", "print only this event type's schema")
	c, sch, err := setupSchema(fs, cfgPath, args, env, need{})
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
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
	}
	for _, ev := range slices.Sorted(maps.Keys(all)) {
		if *dir == "" {
			fmt.Fprintf(stdout, "// %s\n%s", ev, all[ev])
			continue
		}
		path := filepath.Join(*dir, unsafeFileRE.ReplaceAllString(ev, "_")+".schema.json")
		if err := writeOut(path, all[ev], stdout); err != nil {
			return err
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// writeOut writes b to the file at path, or to stdout when path is "".
func writeOut(path string, b []byte, stdout io.Writer) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
