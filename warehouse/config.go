package warehouse

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wharfdata/wharf/schema"
)

// Config sets where the loader finds files and how it loads them. Start from
// DefaultConfig; every field it sets must stay set (a zero value is an error,
// not "use the default").
type Config struct {
	// Dialect is the warehouse's dialect (YAML warehouse.dialect). Required:
	// the loader supports postgres; redshift is validated but not loaded yet.
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
	// IAMRole is the role Redshift's COPY assumes to read S3 (YAML
	// warehouse.iam_role); redshift only.
	IAMRole string
}

// DefaultConfig returns the defaults of design §8. Dialect has no default.
func DefaultConfig() Config {
	return Config{
		Schema:          "public",
		LoadInterval:    5 * time.Minute,
		MaxFilesPerLoad: 500,
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
	case c.Dialect == schema.Redshift && c.IAMRole == "":
		return errors.New("warehouse.iam_role is required when warehouse.dialect is redshift")
	}
	return nil
}
