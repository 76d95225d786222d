package backfill

import (
	"math/rand/v2"
	"testing"
)

// TestReservoirIsUniform draws 10 of 100 items many times: each item is
// kept about as often as every other, and the first ten are not favoured.
func TestReservoirIsUniform(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, 100)
	const rounds = 4000
	for range rounds {
		i := 0
		got := reservoir(10, rnd.IntN, func() (int, bool) { i++; return i - 1, i <= 100 })
		if len(got) != 10 {
			t.Fatalf("sample of %d", len(got))
		}
		for _, x := range got {
			counts[x]++
		}
	}
	for i, c := range counts {
		if c < rounds/10*7/10 || c > rounds/10*13/10 {
			t.Errorf("item %d kept %d times, want about %d", i, c, rounds/10)
		}
	}
	small := reservoir(10, rnd.IntN, func() func() (int, bool) { i := 0; return func() (int, bool) { i++; return i, i <= 3 } }())
	if len(small) != 3 {
		t.Errorf("a collection smaller than the sample: %v", small)
	}
}
