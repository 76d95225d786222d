package batcher

import (
	"errors"
	"strings"
	"time"

	"github.com/wharfdata/wharf/internal/fault"
)

// Config sets the batcher's caps and flush policy. Start from DefaultConfig;
// every field must be set (a zero value is an error, not "use the default").
type Config struct {
	// Prefix is the S3 key prefix, such as "events/" (YAML s3.prefix). ""
	// writes at the bucket's root; a prefix without a trailing "/" gets one.
	Prefix string
	// MaxRows is the most rows one table's buffer holds before it is flushed
	// (reason "rows"). A file can exceed it by the rows of one message,
	// because a message's rows in a table are never split across files.
	// Default 500,000.
	MaxRows int
	// MaxBytes caps the memory, as schema.Rows.Size, of every row held: in the
	// buffers and in flushes whose put has not finished. Add blocks while one
	// more message would exceed it. Default 128 MiB.
	MaxBytes int64
	// MaxAge is how long a buffer's oldest row waits before the buffer is
	// flushed (reason "age"). Default 60 s.
	MaxAge time.Duration
	// MaxInFlight is the most messages (acks not yet called) held. Reaching it
	// flushes every buffer (reason "in_flight"); Add blocks while it is
	// reached. Default 100,000 (YAML sqs.max_in_flight).
	MaxInFlight int
	// FlushConcurrency is how many flushes (encode and put) run at once.
	// Default 4.
	FlushConcurrency int
	// FlushTimeout bounds one put attempt. A failed put is retried with capped
	// exponential backoff and jitter until Close. Default 2 min.
	FlushTimeout time.Duration
	// Fault, when set, is called at the crash-test point fault.AfterS3Put (a
	// file is in S3, its acks have not run); see internal/fault. Optional:
	// nil does nothing.
	Fault func(fault.Point)
}

// DefaultConfig returns the defaults of docs/design.md §8.
func DefaultConfig() Config {
	return Config{
		MaxRows:          500_000,
		MaxBytes:         128 << 20,
		MaxAge:           60 * time.Second,
		MaxInFlight:      100_000,
		FlushConcurrency: 4,
		FlushTimeout:     2 * time.Minute,
	}
}

// Validate reports the first invalid field, named as in the YAML file.
func (c Config) Validate() error {
	switch {
	case strings.HasPrefix(c.Prefix, "/"):
		return errors.New("s3.prefix must not start with /")
	case c.MaxRows <= 0:
		return errors.New("batch.max_rows must be positive")
	case c.MaxBytes <= 0:
		return errors.New("batch.max_bytes must be positive")
	case c.MaxAge <= 0:
		return errors.New("batch.max_age must be positive")
	case c.MaxInFlight <= 0:
		return errors.New("sqs.max_in_flight must be positive")
	case c.FlushConcurrency <= 0:
		return errors.New("batch.flush_concurrency must be positive")
	case c.FlushTimeout <= 0:
		return errors.New("batch.flush_timeout must be positive")
	}
	return nil
}
