package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/schema"
)

// ErrRefused is returned by ApplyPlan for a plan that refuses a change.
var ErrRefused = errors.New("the plan refuses a change")

// Plan compares the schema file with the warehouse's catalog and returns
// what `wharf schema apply` would do, and what it refuses (see schema.Diff).
// It only reads.
func (l *Loader) Plan(ctx context.Context) (*schema.Plan, error) {
	cat, err := l.d.catalog(ctx)
	if err != nil {
		return nil, err
	}
	return schema.Diff(l.sch, cat, l.cfg.Dialect, l.cfg.Schema), nil
}

// ApplyPlan runs a plan's changes in order. A plan with a refusal runs
// nothing and returns ErrRefused. Unlike Apply, which serve runs at start
// and which only adds, it also widens columns.
func (l *Loader) ApplyPlan(ctx context.Context, p *schema.Plan) error {
	if len(p.Refusals) > 0 {
		return fmt.Errorf("apply schema: %w (%d refused)", ErrRefused, len(p.Refusals))
	}
	if err := l.d.execute(ctx, p); err != nil {
		return fmt.Errorf("apply schema: %w", err)
	}
	for _, c := range p.Changes {
		l.log.Info("schema changed", zap.String("change", string(c.Kind)), zap.String("table", c.Table), zap.String("column", c.Column))
	}
	return nil
}

// schemaExistsSQL counts the warehouse schemas named $1.
const schemaExistsSQL = "SELECT count(*) FROM pg_namespace WHERE nspname = $1"

// catalogSQL lists the columns of every table in warehouse schema $1.
const catalogSQL = `SELECT table_name, column_name, data_type,
  coalesce(character_maximum_length, 0), coalesce(numeric_precision, 0), coalesce(numeric_scale, 0)
FROM information_schema.columns
WHERE table_schema = $1
ORDER BY table_name, ordinal_position`

// readCatalog reads the columns of every table in a warehouse schema from
// information_schema, which PostgreSQL and Redshift both have.
func readCatalog(ctx context.Context, q querier, dbSchema string) (*schema.Catalog, error) {
	cat := &schema.Catalog{Tables: map[string][]schema.CatalogColumn{}}
	var n int64
	rows, err := q.Query(ctx, schemaExistsSQL, dbSchema)
	if err != nil {
		return nil, fmt.Errorf("look up schema %s: %w", dbSchema, err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&n}, func() error { return nil }); err != nil {
		return nil, fmt.Errorf("look up schema %s: %w", dbSchema, err)
	}
	cat.Exists = n > 0
	rows, err = q.Query(ctx, catalogSQL, dbSchema)
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s: %w", dbSchema, err)
	}
	var table string
	var c schema.CatalogColumn
	var length, precision, scale int64
	_, err = pgx.ForEachRow(rows, []any{&table, &c.Name, &c.DataType, &length, &precision, &scale}, func() error {
		c.Length, c.Precision, c.Scale = int(length), int(precision), int(scale)
		cat.Tables[table] = append(cat.Tables[table], c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s: %w", dbSchema, err)
	}
	return cat, nil
}

func (p *postgres) catalog(ctx context.Context) (*schema.Catalog, error) {
	return readCatalog(ctx, p.pool, p.schema)
}

// execute runs every change in one transaction under the apply lock, so a
// plan applies whole or not at all.
func (p *postgres) execute(ctx context.Context, plan *schema.Plan) error {
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(applyLockKey)); err != nil {
			return fmt.Errorf("take apply lock: %w", err)
		}
		for _, c := range plan.Changes {
			for _, q := range c.SQL {
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("%s %s: %w", c.Kind, c.Table, err)
				}
			}
		}
		return nil
	})
}

// catalog reads information_schema as on PostgreSQL; a column it reports
// as USER-DEFINED (how it may name SUPER) takes its type from SVV_COLUMNS,
// Redshift's own view of every column.
func (r *redshift) catalog(ctx context.Context) (*schema.Catalog, error) {
	cat, err := readCatalog(ctx, r.pool, r.schema)
	if err != nil || !hasUserDefined(cat) {
		return cat, err
	}
	rows, err := r.pool.Query(ctx, rsSVVColumnsSQL, r.schema)
	if err != nil {
		return nil, fmt.Errorf("list columns of schema %s from svv_columns: %w", r.schema, err)
	}
	types := map[[2]string]string{}
	var table, column, typ string
	if _, err := pgx.ForEachRow(rows, []any{&table, &column, &typ}, func() error {
		types[[2]string{table, column}] = strings.ToLower(typ)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list columns of schema %s from svv_columns: %w", r.schema, err)
	}
	resolveUserDefined(cat, types)
	return cat, nil
}

// rsSVVColumnsSQL lists the columns of schema $1 that information_schema
// reports as USER-DEFINED, with the type SVV_COLUMNS gives them.
const rsSVVColumnsSQL = `SELECT CAST(table_name AS varchar(128)), CAST(column_name AS varchar(128)), CAST(data_type AS varchar(128))
FROM svv_columns
WHERE table_schema = CAST($1 AS varchar(128))`

func hasUserDefined(cat *schema.Catalog) bool {
	for _, cols := range cat.Tables {
		for _, c := range cols {
			if c.DataType == userDefined {
				return true
			}
		}
	}
	return false
}

// userDefined is information_schema's data_type for a type it does not name.
const userDefined = "USER-DEFINED"

// resolveUserDefined replaces each USER-DEFINED data_type of cat with the
// one types gives its table and column, when it gives one.
func resolveUserDefined(cat *schema.Catalog, types map[[2]string]string) {
	for table, cols := range cat.Tables {
		for i, c := range cols {
			if t, ok := types[[2]string{table, c.Name}]; ok && c.DataType == userDefined {
				cols[i].DataType = t
			}
		}
	}
}

// execute runs each change on its own: an atomic one in a transaction, the
// rest statement by statement, since Redshift runs ALTER COLUMN … TYPE only
// outside a transaction block. A failure stops the plan; the changes before
// it stay, and a new plan shows what is left.
func (r *redshift) execute(ctx context.Context, plan *schema.Plan) error {
	for _, c := range plan.Changes {
		var err error
		if c.Atomic {
			err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
				for _, q := range c.SQL {
					if err := r.runTx(ctx, tx, q); err != nil {
						return err
					}
				}
				return nil
			})
		} else {
			for _, q := range c.SQL {
				if err = r.runDDL(ctx, q); err != nil {
					break
				}
			}
			if err != nil && len(c.Fallback) > 0 {
				r.log.Warn("ALTER COLUMN TYPE refused; rebuilding the column instead", zap.String("table", c.Table), zap.String("column", c.Column), zap.Error(err))
				err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
					for _, q := range c.Fallback {
						if err := r.runTx(ctx, tx, q); err != nil {
							return err
						}
					}
					return nil
				})
			}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.Kind, c.Table, err)
		}
	}
	return nil
}
