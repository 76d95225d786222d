package redshift

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/stacktest"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/dialect"
	"github.com/wharfdata/wharf/warehouse/internal/whtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }

const testRole = "arn:aws:iam::123456789012:role/wharf-copy"

// testTables has a column of every type, and a child table.
const testTables = whtest.Tables

func parseSchema(t testing.TB, yaml string) *schema.Schema { return whtest.Schema(t, yaml) }

// TestRedshiftSQLGolden pins every statement the redshift dialect issues,
// COPY included, and the manifest; refresh with -update.
func TestRedshiftSQLGolden(t *testing.T) {
	s := parseSchema(t, testTables)
	var out bytes.Buffer
	stmt := func(q string) { out.WriteString(q + ";\n\n") }
	out.WriteString("-- apply\n")
	stmt(dialect.SchemaExistsSQL)
	stmt(dialect.CatalogSQL)
	stmt(schema.CreateSchemaSQL("wh"))
	for _, tb := range s.All() {
		stmt(schema.CreateTableSQL(tb, schema.Redshift, "wh"))
	}
	stmt(schema.AddColumnSQL(s.Table("ev"), s.Table("ev").Columns[len(s.Table("ev").Columns)-1], schema.Redshift, "wh"))
	for _, q := range schema.LedgerSQL(schema.Redshift, "wh") {
		stmt(q)
	}
	out.WriteString("-- pending files\n")
	stmt(rsLoadedSQL("wh", 3))
	stmt(rsSlicesSQL())
	for _, tb := range s.All() {
		out.WriteString("-- merge " + tb.Name + "\n")
		stmt(rsCreateLockTableSQL("wh", tb))
		stmt(rsLockSQL("wh", tb))
		stmt(rsLoadedSQL("wh", 2))
		stmt(rsStagingSQL(tb))
		cols := make([]string, len(tb.Columns))
		for i, c := range tb.Columns {
			cols[i] = c.Name
		}
		stmt(rsCopySQL(rsStagingTable, cols, "s3://bucket/events/_manifests/"+tb.Name+"/01JDX0000000000000000000.manifest", testRole))
		if tb.Name == "ev_tags" {
			stmt(rsCopySQL(rsStagingTable, cols, "s3://bucket/events/_manifests/"+tb.Name+"/01JDX0000000000000000000.manifest", IAMRoleDefault))
		}
		if tb.Name == "ev" { // files written before i32 became bigint
			types := make([]schema.Type, len(tb.Columns))
			for i, c := range tb.Columns {
				types[i] = c.Type
			}
			types[tb.Column("i64")] = schema.Type{Kind: schema.Integer}
			g := CopyGroup{Columns: cols, Types: types}
			stmt(rsGroupStagingSQL(rsStagingTable+"_1", g))
			stmt(rsCastInsertSQL(tb, g, rsStagingTable+"_1"))
		}
		stmt(rsWindowSQL())
		stmt(rsMergeSQL(tb, "wh"))
		for _, c := range tb.Children {
			stmt(rsChildCleanupSQL(c, "wh"))
		}
		stmt(rsLedgerInsertSQL("wh", 2))
		stmt(rsDropStagingSQL())
	}
	out.WriteString("-- after a failed COPY\n")
	stmt(rsLoadErrorsSQL())
	out.WriteString("-- watermark\n")
	stmt(rsWatermarkSQL("wh"))
	stmt(rsLockWatermarksSQL("wh"))
	stmt(rsWatermarkInsertSQL("wh"))
	stmt(rsWatermarkUpdateSQL("wh"))
	out.WriteString("-- manifest\n")
	out.Write(manifestJSON("bucket", []s3store.Object{
		{Key: "events/ev/dt=2026-11-25/01JDX1.parquet", Size: 1234},
		{Key: "events/ev/dt=2026-11-25/01JDX2.parquet", Size: 98765},
	}))
	golden := "testdata/redshift.sql"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, out.Bytes()) {
		t.Errorf("SQL differs from %s (run go test ./warehouse/redshift -update and review the diff):\n%s", golden, out.String())
	}
}

func TestSliceBatch(t *testing.T) {
	cases := []struct{ pending, max, slices, want int }{
		{10, 500, 4, 10},    // everything fits: one COPY
		{1000, 500, 4, 500}, // 500 is a multiple of 4
		{1000, 500, 6, 498},
		{1000, 500, 1, 500},
		{1000, 3, 4, 3}, // fewer files allowed than slices
		{7, 6, 4, 4},
	}
	for _, c := range cases {
		if got := sliceBatch(c.pending, c.max, c.slices); got != c.want {
			t.Errorf("sliceBatch(%d, %d, %d) = %d, want %d", c.pending, c.max, c.slices, got, c.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "XX000", Message: "1023", Detail: "Serializable isolation violation on table - 123"}, true},
		{&pgconn.PgError{Code: "XX000", Message: "ERROR: Serializable isolation violation on table - 4242"}, true},
		{&pgconn.PgError{Code: "40001", Message: "could not serialize access"}, true},
		{fmt.Errorf("merge: %w", &pgconn.PgError{Code: "40P01"}), true},
		{&pgconn.PgError{Code: "XX000", Message: "Load into table 'wharf_staging' failed"}, false},
		{errors.New("1023"), false},
	}
	for _, c := range cases {
		if got := (&Dialect{}).Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRedshiftTextFormats: the Redshift pool asks for the text format for
// every parameter and every result (Redshift documents no binary format),
// and values still round-trip through it.
func TestTextFormats(t *testing.T) {
	ctx := context.Background()
	pc, err := pgxpool.ParseConfig(stacktest.Get(t).WarehouseDSN)
	if err != nil {
		t.Fatal(err)
	}
	PoolConfig(pc)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	m := conn.Conn().TypeMap()
	for _, oid := range []uint32{pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float8OID, pgtype.NumericOID,
		pgtype.BoolOID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.DateOID, pgtype.VarcharOID, pgtype.TextOID} {
		if got := m.FormatCodeForOID(oid); got != pgtype.TextFormatCode {
			t.Errorf("format for OID %d = %d, want text", oid, got)
		}
	}
	var (
		n  int64
		ts time.Time
		s  string
	)
	want := time.Now().UTC().Truncate(time.Second).Add(123456 * time.Microsecond)
	err = conn.QueryRow(ctx, "SELECT CAST($1 AS bigint) * 2, CAST($2 AS timestamp), CAST($3 AS varchar(8))", int64(1)<<40, dialect.Timestamp(want), "héllo").Scan(&n, &ts, &s)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(1)<<41 || !ts.Equal(want) || s != "héllo" {
		t.Errorf("round trip = %d %v %q, want %d %v héllo", n, ts, s, int64(1)<<41, want)
	}
}
