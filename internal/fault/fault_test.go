package fault

import (
	"slices"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"after_s3_put", "want point:probability"},
		{"after_lunch:0.5", `unknown point "after_lunch"`},
		{"after_s3_put:0", "probability must be in (0, 1]"},
		{"after_s3_put:1.5", "probability must be in (0, 1]"},
		{"after_s3_put:after=-1", "after= must be a count"},
		{"after_s3_put:after=x", "after= must be a count"},
		{"after_s3_put:0.1,after_s3_put:0.2", "given twice"},
		{"seed=-3,after_commit:0.1", "seed must be"},
		{"seed=3", "no fault point"},
	} {
		_, err := Parse(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
	if inj, err := Parse("  "); inj != nil || err != nil {
		t.Errorf("Parse(blank) = %v, %v; want nil, nil", inj, err)
	}
	var none *Injector
	if none.Hook() != nil {
		t.Error("a nil Injector's hook is not nil")
	}
}

// kills returns, for n hits of point, the hit numbers at which inj fires.
func kills(inj *Injector, point Point, n int) []int {
	var got []int
	hit := 0
	inj.kill = func() { got = append(got, hit) }
	for hit = 1; hit <= n; hit++ {
		inj.Hit(point)
	}
	return got
}

func TestAfter(t *testing.T) {
	inj, err := Parse("before_commit:after=3")
	if err != nil {
		t.Fatal(err)
	}
	var logged []Point
	inj.OnKill = func(p Point, hit int) { logged = append(logged, p) }
	if got := kills(inj, AfterCommit, 10); len(got) != 0 {
		t.Errorf("a point without a rule fired at %v", got)
	}
	if got := kills(inj, BeforeCommit, 10); len(got) != 1 || got[0] != 4 {
		t.Errorf("after=3 fired at hits %v, want [4]", got)
	}
	if len(logged) != 1 || logged[0] != BeforeCommit {
		t.Errorf("OnKill saw %v", logged)
	}
}

func TestProbabilityIsSeeded(t *testing.T) {
	run := func() []int {
		inj, err := Parse("after_s3_put:0.1, seed=7")
		if err != nil {
			t.Fatal(err)
		}
		return kills(inj, AfterS3Put, 1000)
	}
	a, b := run(), run()
	if len(a) < 50 || len(a) > 150 {
		t.Errorf("p=0.1 fired %d times in 1000 hits", len(a))
	}
	if !slices.Equal(a, b) {
		t.Errorf("the same seed fired at different hits: %v, then %v", a, b)
	}
}
