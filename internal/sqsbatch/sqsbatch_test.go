package sqsbatch

import (
	"strings"
	"testing"
)

// Batches hold at most ten entries and 256 KiB; an entry larger than the
// rest of a batch starts the next one.
func TestBatches(t *testing.T) {
	var b Batches
	var sizes []int
	add := func(e Entry) {
		if full := b.Add(e); full != nil {
			sizes = append(sizes, len(full))
		}
	}
	for range 25 {
		add(Entry{Body: "{}"})
	}
	big := strings.Repeat("x", 100<<10)
	for range 3 {
		add(Entry{Body: big})
	}
	if rest := b.Take(); rest != nil {
		sizes = append(sizes, len(rest))
	}
	// 25 small: 10, 10, then 5 with the first two big ones (5×2 B + 200 KiB),
	// then the third big one alone.
	want := []int{10, 10, 7, 1}
	if len(sizes) != len(want) {
		t.Fatalf("batches of %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("batches of %v, want %v", sizes, want)
		}
	}
	if b.Take() != nil {
		t.Error("Take after Take is not empty")
	}
}
