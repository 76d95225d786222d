package batcher

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/fault"
	"github.com/wharfdata/wharf/internal/pq"
	"github.com/wharfdata/wharf/schema"
)

// worker runs queued flushes until Close, then drains the queue (each job
// then ends at once with ErrClosed).
func (b *Batcher) worker() {
	defer b.workers.Done()
	var buf bytes.Buffer
	b.mu.Lock()
	for {
		for len(b.queue) == 0 && !b.closed {
			b.work.Wait()
		}
		if len(b.queue) == 0 {
			b.mu.Unlock()
			return
		}
		j := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.mu.Unlock()
		b.run(j, &buf)
		b.mu.Lock()
	}
}

// run encodes a job's rows, puts the file, and settles the job.
func (b *Batcher) run(j *job, buf *bytes.Buffer) {
	start := time.Now()
	log := b.log.With(zap.String("table", j.table.Name), zap.Int("rows", j.nrows), zap.String("reason", string(j.reason)))
	b.hb.begin(j, b.clock.Now())
	defer b.hb.end(j)
	if err := b.ctx.Err(); err != nil {
		b.finish(j, ErrClosed, 0)
		return
	}
	buf.Reset()
	if err := b.encode(buf, j.table, j.rows); err != nil {
		log.Error("flush failed: cannot encode", zap.Error(err))
		b.finish(j, err, 0)
		return
	}
	j.rows = nil // the encoded file is all the put needs
	key, err := b.key(j.table.Name)
	if err != nil {
		log.Error("flush failed: no file name", zap.Error(err))
		b.finish(j, err, 0)
		return
	}
	size := int64(buf.Len())
	attempts, err := b.put(j, key, buf.Bytes(), log)
	took := time.Since(start)
	b.m.flushSeconds.Observe(took.Seconds())
	if err != nil {
		log.Error("flush failed", zap.String("file", key), zap.Int("attempts", attempts), zap.Duration("duration", took), zap.Error(err))
		b.finish(j, err, 0)
		return
	}
	log.Info("flush", zap.Int64("bytes", size), zap.Int64("mem_bytes", j.bytes), zap.Int("messages", len(j.msgs)),
		zap.String("file", key), zap.Duration("duration", took))
	if b.cfg.Fault != nil {
		b.cfg.Fault(fault.AfterS3Put)
	}
	b.finish(j, nil, size)
	// Keep the buffer for the next file unless it grew unusually large.
	if buf.Cap() > 64<<20 {
		*buf = bytes.Buffer{}
	}
}

// put writes body to key, retrying with capped exponential backoff and
// jitter until it succeeds or the batcher closes. Each attempt has
// FlushTimeout. Retries reuse the key, so an attempt that succeeded
// unbeknown to us is overwritten, not duplicated.
func (b *Batcher) put(j *job, key string, body []byte, log *zap.Logger) (attempts int, err error) {
	delay := b.backoff
	for {
		attempts++
		b.hb.begin(j, b.clock.Now())
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.FlushTimeout)
		err = b.store.Put(ctx, key, bytes.NewReader(body), int64(len(body)))
		cancel()
		if err == nil {
			return attempts, nil
		}
		if b.ctx.Err() != nil {
			return attempts, fmt.Errorf("put %s: %w: %w", key, ErrClosed, err)
		}
		b.m.putRetries.Inc()
		// Full jitter over the upper half: spread retries of many flushes.
		wait := delay/2 + rand.N(delay/2+1)
		log.Warn("put failed; retrying", zap.String("file", key), zap.Int("attempt", attempts), zap.Duration("retry_in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return attempts, fmt.Errorf("put %s: %w: %w", key, ErrClosed, err)
		}
		delay = min(delay*2, b.maxBack)
	}
}

// finish settles a job: frees its bytes, records its outcome on its
// messages, calls the acks of messages now complete, and wakes waiters.
func (b *Batcher) finish(j *job, err error, size int64) {
	if err == nil {
		b.m.filesWritten.WithLabelValues(j.table.Name).Inc()
		b.m.bytesWritten.WithLabelValues(j.table.Name).Add(float64(size))
		b.m.rowsWritten.WithLabelValues(j.table.Name).Add(float64(j.nrows))
	} else {
		b.m.flushFailures.WithLabelValues(j.table.Name).Inc()
	}
	b.mu.Lock()
	if err == nil {
		b.written.FilesWritten++
		b.written.RowsWritten += int64(j.nrows)
		b.written.BytesWritten += size
	}
	b.flushingBytes -= j.bytes
	b.flushingRows -= int64(j.nrows)
	if f := b.flushing[j.table]; f != nil {
		f.rows -= int64(j.nrows)
		f.bytes -= j.bytes
	}
	b.tableGaugesLocked(j.table)
	acks := b.settleLocked(j.msgs, err, nil)
	j.msgs = nil
	b.freeRoomLocked()
	b.gaugesLocked()
	b.mu.Unlock()
	callAcks(acks)

	// The job ends (for Flush and Stats) only once its acks have run.
	b.mu.Lock()
	delete(b.active, j)
	j.err = err
	close(j.done)
	b.mu.Unlock()
}

// encode writes rows as one Parquet file, reusing a writer of the table.
func (b *Batcher) encode(buf *bytes.Buffer, t *schema.Table, rows *schema.TableRows) error {
	w := b.writers.get(t)
	if err := w.EncodeRows(buf, rows); err != nil {
		return err // a writer that failed mid-file is not reused
	}
	b.writers.put(t, w)
	return nil
}

// key names a new file: PREFIX/TABLE/dt=YYYY-MM-DD/ULID.parquet, dt being
// the UTC day it is written. ULIDs sort by the time the flush named the
// file, but files can land in S3 out of that order (flushes run in parallel
// and a put may retry for minutes): a reader must not treat the greatest key
// seen as a watermark.
func (b *Batcher) key(table string) (string, error) {
	now := b.clock.Now().UTC()
	id, err := b.ids.next(now)
	if err != nil {
		return "", fmt.Errorf("name file for %s: %w", table, err)
	}
	return b.cfg.Prefix + table + "/dt=" + now.Format(time.DateOnly) + "/" + id.String() + ".parquet", nil
}

// idSource makes ULIDs that increase within a millisecond.
type idSource struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

func newIDSource() *idSource {
	return &idSource{entropy: ulid.Monotonic(crand.Reader, 0)}
}

func (s *idSource) next(t time.Time) (ulid.ULID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ulid.New(ulid.Timestamp(t), s.entropy)
}

// writerPool keeps idle Parquet writers per table: a writer is not safe for
// concurrent use, and reusing one keeps its buffers.
type writerPool struct {
	mu   sync.Mutex
	free map[*schema.Table][]*pq.Writer
}

func (p *writerPool) get(t *schema.Table) *pq.Writer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ws := p.free[t]; len(ws) > 0 {
		w := ws[len(ws)-1]
		p.free[t] = ws[:len(ws)-1]
		return w
	}
	return pq.NewWriter(t)
}

func (p *writerPool) put(t *schema.Table, w *pq.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free[t] = append(p.free[t], w)
}
