package warehouse

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/wharfdata/wharf/schema"
)

// ErrRefused is returned by ApplyPlan for a plan that refuses a change.
var ErrRefused = errors.New("the plan refuses a change")

// Plan compares the schema file with the warehouse's catalog and returns
// what `wharf schema apply` would do, and what it refuses (see schema.Diff).
// It only reads.
func (l *Loader) Plan(ctx context.Context) (*schema.Plan, error) {
	cat, err := l.d.Catalog(ctx)
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
	if err := l.d.Execute(ctx, p); err != nil {
		return fmt.Errorf("apply schema: %w", err)
	}
	for _, c := range p.Changes {
		l.log.Info("schema changed", zap.String("change", string(c.Kind)), zap.String("table", c.Table), zap.String("column", c.Column))
	}
	return nil
}
