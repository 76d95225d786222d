// Package s3storetest holds the contract of wharf's object store: what
// s3store.Store does against S3, and so what every fake of it must do too.
// Run checks a store against it; the real store runs it on the local stack
// (s3store's tests), and every fake runs it where it is defined. Mem is an
// in-memory store that keeps the contract, for tests that need no S3.
package s3storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/wharfdata/wharf/internal/s3store"
)

// Store is what the suite needs of a store: Put, and Get to read it back.
type Store interface {
	Put(ctx context.Context, key string, body io.Reader, size int64) error
	Get(ctx context.Context, key string) ([]byte, error)
}

// The methods the suite checks when a store has them.
type (
	keyLister interface {
		ListKeys(ctx context.Context, prefix string) ([]string, error)
	}
	lister interface {
		List(ctx context.Context, prefix, startAfter string) ([]s3store.Object, error)
	}
	prefixLister interface {
		ListPrefixes(ctx context.Context, prefix, delimiter string) ([]string, error)
	}
	ranger interface {
		GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	}
	deleter interface {
		Delete(ctx context.Context, key string) error
	}
)

var _ interface {
	Store
	keyLister
	lister
	prefixLister
	ranger
	deleter
} = (*s3store.Store)(nil)

// Run checks store against the contract, writing under prefix, which must
// hold no object. Put and Get are checked always; ListKeys, List,
// ListPrefixes, GetRange and Delete when store has them.
func Run(t *testing.T, store Store, prefix string) {
	s := &suite{ctx: context.Background(), store: store, prefix: prefix}
	t.Run("put then get", s.putThenGet)
	t.Run("the body is read once, at put", s.bodyReadOnce)
	t.Run("a missing key is ErrNotFound", s.missingKey)
	t.Run("a size that is not the body's fails", s.wrongSize)
	if l, ok := store.(keyLister); ok {
		t.Run("ListKeys", func(t *testing.T) { s.listKeys(t, l) })
	}
	if l, ok := store.(lister); ok {
		t.Run("List", func(t *testing.T) { s.list(t, l) })
	}
	if l, ok := store.(prefixLister); ok {
		t.Run("ListPrefixes", func(t *testing.T) { s.listPrefixes(t, l) })
	}
	if r, ok := store.(ranger); ok {
		t.Run("GetRange", func(t *testing.T) { s.getRange(t, r) })
	}
	if d, ok := store.(deleter); ok {
		t.Run("Delete", func(t *testing.T) { s.delete(t, d) })
	}
}

// suite is one run of the contract against a store.
type suite struct {
	ctx    context.Context
	store  Store
	prefix string
}

func (s *suite) put(t *testing.T, key, body string) {
	t.Helper()
	if err := s.store.Put(s.ctx, s.prefix+key, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func (s *suite) get(t *testing.T, key string) string {
	t.Helper()
	b, err := s.store.Get(s.ctx, s.prefix+key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(b)
}

func (s *suite) putThenGet(t *testing.T) {
	s.put(t, "rw/a", "first")
	if got := s.get(t, "rw/a"); got != "first" {
		t.Errorf("get = %q, want %q", got, "first")
	}
	s.put(t, "rw/a", "second, longer")
	if got := s.get(t, "rw/a"); got != "second, longer" {
		t.Errorf("get after a second put = %q, want the second body", got)
	}
	s.put(t, "rw/empty", "")
	if b, err := s.store.Get(s.ctx, s.prefix+"rw/empty"); err != nil || len(b) != 0 {
		t.Errorf("get of an empty object = %q, %v; want no bytes, no error", b, err)
	}
	// Keys as wharf writes them: dt=… partitions, and any byte a table
	// or job name may hold.
	for _, key := range []string{"rw/dt=day/01ARZ3NDEKTSV4RRFFQ69G5FAV.parquet", "rw/a b/é.json"} {
		s.put(t, key, key)
		if got := s.get(t, key); got != key {
			t.Errorf("get %q = %q", key, got)
		}
	}
}

func (s *suite) bodyReadOnce(t *testing.T) {
	body := []byte("original")
	if err := s.store.Put(s.ctx, s.prefix+"own/a", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	copy(body, "CHANGED!")
	b := []byte(s.get(t, "own/a"))
	if string(b) != "original" {
		t.Errorf("get = %q after the caller reused its buffer, want %q", b, "original")
	}
	got, err := s.store.Get(s.ctx, s.prefix+"own/a")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "CHANGED!")
	if again := s.get(t, "own/a"); again != "original" {
		t.Errorf("get = %q after the caller changed what an earlier get returned", again)
	}
}

func (s *suite) missingKey(t *testing.T) {
	b, err := s.store.Get(s.ctx, s.prefix+"missing/a")
	if !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("get of a missing key = %q, %v; want an error wrapping s3store.ErrNotFound", b, err)
	}
}

func (s *suite) wrongSize(t *testing.T) {
	for _, size := range []int64{3, 30} {
		if err := s.store.Put(s.ctx, s.prefix+"size/a", strings.NewReader("ten bytes!"), size); err == nil {
			t.Errorf("put of 10 bytes with size %d: no error", size)
		}
	}
}

func (s *suite) listKeys(t *testing.T, l keyLister) {
	for _, k := range []string{"keys/b", "keys/a/2", "keys/a/1", "keys/ab", "keysx/c"} {
		s.put(t, k, k)
	}
	got, err := l.ListKeys(s.ctx, s.prefix+"keys/")
	want := []string{s.prefix + "keys/a/1", s.prefix + "keys/a/2", s.prefix + "keys/ab", s.prefix + "keys/b"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ListKeys = %q, %v; want %q (every key under the prefix, in key order)", got, err, want)
	}
	if got, err := l.ListKeys(s.ctx, s.prefix+"nothing/"); err != nil || len(got) != 0 {
		t.Errorf("ListKeys of an empty prefix = %q, %v; want none, no error", got, err)
	}
}

func (s *suite) list(t *testing.T, l lister) {
	for _, k := range []string{"list/c", "list/a", "list/b"} {
		s.put(t, k, k+"-body")
	}
	got, err := l.List(s.ctx, s.prefix+"list/", s.prefix+"list/a")
	want := []s3store.Object{{Key: s.prefix + "list/b", Size: 11}, {Key: s.prefix + "list/c", Size: 11}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List after list/a = %v, %v; want %v (sizes, key order, after startAfter only)", got, err, want)
	}
}

func (s *suite) listPrefixes(t *testing.T, l prefixLister) {
	for _, k := range []string{"parts/t/dt=2/x", "parts/t/dt=1/x", "parts/t/dt=1/y", "parts/t/top"} {
		s.put(t, k, k)
	}
	got, err := l.ListPrefixes(s.ctx, s.prefix+"parts/t/", "/")
	want := []string{s.prefix + "parts/t/dt=1/", s.prefix + "parts/t/dt=2/"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ListPrefixes = %q, %v; want %q", got, err, want)
	}
}

func (s *suite) getRange(t *testing.T, r ranger) {
	s.put(t, "range/a", "0123456789")
	if b, err := r.GetRange(s.ctx, s.prefix+"range/a", 2, 3); err != nil || string(b) != "234" {
		t.Errorf("GetRange(2, 3) = %q, %v; want %q", b, err, "234")
	}
	if b, err := r.GetRange(s.ctx, s.prefix+"range/a", 6, 10); err != nil || string(b) != "6789" {
		t.Errorf("GetRange past the end = %q, %v; want what there is, %q", b, err, "6789")
	}
	if _, err := r.GetRange(s.ctx, s.prefix+"range/missing", 0, 4); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("GetRange of a missing key: %v, want an error wrapping s3store.ErrNotFound", err)
	}
}

func (s *suite) delete(t *testing.T, d deleter) {
	s.put(t, "del/a", "a")
	if err := d.Delete(s.ctx, s.prefix+"del/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Get(s.ctx, s.prefix+"del/a"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	if err := d.Delete(s.ctx, s.prefix+"del/never"); err != nil {
		t.Errorf("delete of a missing key: %v, want nil", err)
	}
}
