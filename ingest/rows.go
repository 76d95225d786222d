package ingest

import (
	"sync"

	"github.com/wharfdata/wharf/schema"
)

// rowsPool keeps the schema.Rows that pollers flatten messages into. The
// sink copies a message's rows at Add, so its Rows is reset and reused: a
// poller allocates no rows per message once its buffers have grown.
type rowsPool struct{ p sync.Pool }

// maxPooledRows is the largest Rows (schema.Rows.Size) put back: one that a
// large message grew is left to the collector.
const maxPooledRows = 256 << 10

func (p *rowsPool) get() *schema.Rows {
	if r, ok := p.p.Get().(*schema.Rows); ok {
		return r
	}
	return &schema.Rows{}
}

func (p *rowsPool) put(r *schema.Rows) {
	if r == nil || r.Size() > maxPooledRows {
		return
	}
	r.Reset()
	p.p.Put(r)
}
