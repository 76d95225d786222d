package warehouse

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/schema"
	"github.com/wharfdata/wharf/warehouse/redshift"
)

// Config sets where the loader finds files and how it loads them. Start from
// DefaultConfig; every field it sets must stay set (a zero value is an error,
// not "use the default").
type Config struct {
	// Dialect is the warehouse's dialect (YAML warehouse.dialect). Required:
	// postgres or redshift.
	Dialect schema.Dialect
	// Schema is the warehouse schema holding the tables and the ledger
	// (YAML warehouse.schema). Default "public".
	Schema string
	// Prefix is the S3 key prefix the batcher writes under, such as "events/"
	// (YAML s3.prefix). "" is the bucket's root; a prefix without a trailing
	// "/" gets one, as the batcher does.
	Prefix string
	// LoadInterval is the time between two loads in Run (YAML
	// warehouse.load_interval). Default 5 min.
	LoadInterval time.Duration
	// MaxFilesPerLoad is the most files merged in one transaction (YAML
	// warehouse.max_files_per_load). Default 500.
	MaxFilesPerLoad int
	// MergeTimeout bounds one merge transaction (YAML
	// warehouse.merge_timeout): past it the transaction is cancelled and
	// rolled back, its files stay pending, and the next load retries them.
	// A warehouse that hangs (a lock held elsewhere, a stuck COPY) then
	// cannot stall the loader forever. Default 15 min.
	MergeTimeout time.Duration
	// ReconcileInterval is how often a table's load also lists the day
	// partitions before its watermark and loads any file the ledger does
	// not name (YAML warehouse.reconcile_interval): a put retried past
	// midnight, a task with a skewed clock, a replay into an old day. The
	// first load of each table after the process starts always reconciles.
	// A load in between lists only the days from the watermark on, so
	// listing stays cheap; a reconciliation costs one S3 LIST per 1,000
	// files kept under the table's prefix. Default 1 h.
	ReconcileInterval time.Duration
	// LoadConcurrency is how many tables one load merges at once (YAML
	// warehouse.load_concurrency), each on a connection of its own; keep it
	// within the pool's size. Default 4.
	LoadConcurrency int
	// IAMRole is the role Redshift's COPY assumes to read S3 (YAML
	// warehouse.iam_role); redshift only.
	IAMRole string
	// OnLoad, when set, is called after each batch of files a table's load
	// merged (Load.Err nil) and when a table's load fails (Load.Err set),
	// on the loading goroutine: it should be quick. Optional: the status
	// page's recorder uses it.
	OnLoad func(Load)
	// Fault, when set, is called at the crash-test points fault.BeforeCommit
	// (in a merge's transaction, after the merge and the ledger insert) and
	// fault.AfterCommit (the merge committed, nothing else done); see
	// internal/fault. Optional: nil does nothing.
	Fault func(fault.Point)
}

// IAMRoleDefault as warehouse.iam_role makes COPY use the cluster's default
// IAM role (COPY … IAM_ROLE default).
const IAMRoleDefault = redshift.IAMRoleDefault

// iamRoleRE matches one IAM role ARN, or several chained with commas.
var iamRoleRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=.@/-]+(,arn:aws[a-z-]*:iam::\d{12}:role/[\w+=.@/-]+)*$`)

// DefaultConfig returns the defaults of docs/design.md §8. Dialect has no default.
func DefaultConfig() Config {
	return Config{
		Schema:          "public",
		LoadInterval:    5 * time.Minute,
		MaxFilesPerLoad: 500,
		MergeTimeout:    15 * time.Minute,

		ReconcileInterval: time.Hour,
		LoadConcurrency:   4,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c Config) Validate() error {
	switch {
	case c.Dialect != schema.Postgres && c.Dialect != schema.Redshift:
		return fmt.Errorf("warehouse.dialect must be postgres or redshift (got %q)", c.Dialect)
	case c.Schema == "":
		return errors.New("warehouse.schema must be set")
	case schema.ValidIdentifier(c.Schema) != "":
		return fmt.Errorf("warehouse.schema: %s", schema.ValidIdentifier(c.Schema))
	case strings.HasPrefix(c.Prefix, "/"):
		return errors.New("s3.prefix must not start with /")
	case c.LoadInterval <= 0:
		return fmt.Errorf("warehouse.load_interval must be positive (got %s)", c.LoadInterval)
	case c.MaxFilesPerLoad <= 0:
		return fmt.Errorf("warehouse.max_files_per_load must be positive (got %d)", c.MaxFilesPerLoad)
	case c.MergeTimeout <= 0:
		return fmt.Errorf("warehouse.merge_timeout must be positive (got %s)", c.MergeTimeout)
	case c.LoadConcurrency <= 0:
		return fmt.Errorf("warehouse.load_concurrency must be positive (got %d)", c.LoadConcurrency)
	case c.ReconcileInterval <= 0:
		return fmt.Errorf("warehouse.reconcile_interval must be positive (got %s)", c.ReconcileInterval)
	case c.Dialect == schema.Redshift && c.IAMRole == "":
		return errors.New("warehouse.iam_role is required when warehouse.dialect is redshift")
	case c.Dialect == schema.Redshift && c.IAMRole != IAMRoleDefault && !iamRoleRE.MatchString(c.IAMRole):
		return fmt.Errorf("warehouse.iam_role must be an IAM role ARN such as arn:aws:iam::123456789012:role/wharf-copy (comma-separated to chain roles), or default, got %q", c.IAMRole)
	case c.Dialect == schema.Redshift && strings.ContainsAny(c.Prefix, `'\`):
		return errors.New("s3.prefix must not hold a quote or a backslash with warehouse.dialect redshift (it goes into COPY's manifest URL)")
	}
	return nil
}
