package s3storetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/wharfdata/wharf/internal/s3store"
)

// Mem is an object store in memory that keeps the contract (Run) for Put,
// Get and ListKeys. Its zero value is empty and ready; it is safe for
// concurrent use.
type Mem struct {
	mu   sync.Mutex
	objs map[string][]byte
}

// NewMem returns a Mem holding objs (key → body), which it takes over.
func NewMem(objs map[string][]byte) *Mem { return &Mem{objs: objs} }

// Put stores body under key. Like S3, it fails when size is not the body's.
func (m *Mem) Put(_ context.Context, key string, body io.Reader, size int64) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put %s: size %d, body %d bytes", key, size, len(b))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[key] = b
	return nil
}

// Get returns a copy of the object at key, or an error wrapping
// s3store.ErrNotFound.
func (m *Mem) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, s3store.ErrNotFound)
	}
	return bytes.Clone(b), nil
}

// ListKeys returns the keys under prefix, in key order.
func (m *Mem) ListKeys(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}
