// Package fault kills the process with SIGKILL at named points of the
// pipeline, so that crash tests can run the real binary and check that no
// event is lost or duplicated (docs/design.md §2, guarantees 1 and 2).
//
// An Injector is built from a spec, which cmd/wharf reads from the
// environment variable WHARF_FAULT (and nothing else reads). The spec is a
// comma-separated list of rules and options:
//
//	after_s3_put:0.02        at each hit of after_s3_put, SIGKILL with probability 0.02
//	before_commit:after=3    let 3 hits of before_commit pass, SIGKILL at the 4th
//	seed=42                  seed of the random draws (default: from the clock)
//
// Several rules may be given, one per point. The points, where the
// components call their Fault hook:
//
//	after_receive   ingest: a batch of messages received, nothing written for it
//	after_mongo     ingest: the batch's raw documents written to Mongo, no row given to the batcher
//	after_s3_put    batcher: a Parquet file put to S3, its acks not run (messages not deleted)
//	before_commit   warehouse: in the merge transaction, after the merge and the ledger insert, before COMMIT
//	after_commit    warehouse: the merge committed, nothing else done
//
// The components take the hook as an optional func(fault.Point) field of
// their Config (nil does nothing), so there is no global state: cmd/wharf
// passes Injector.Hook() to each.
package fault

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Point names a place in the pipeline where a crash test may kill the
// process. Its value is the name a spec gives it.
type Point string

// The fault points.
const (
	AfterReceive Point = "after_receive"
	AfterMongo   Point = "after_mongo"
	AfterS3Put   Point = "after_s3_put"
	BeforeCommit Point = "before_commit"
	AfterCommit  Point = "after_commit"
)

// Points lists every fault point, in pipeline order.
var Points = []Point{AfterReceive, AfterMongo, AfterS3Put, BeforeCommit, AfterCommit}

// rule says when one point kills: after `after` passes (after >= 0), or with
// probability prob at each hit.
type rule struct {
	after int
	prob  float64
	hits  int
}

// Injector kills the process at the points its spec names. Its methods are
// safe for concurrent use.
type Injector struct {
	// OnKill, when set, runs just before the kill (to log it). It must not
	// block.
	OnKill func(point Point, hit int)

	spec string
	mu   sync.Mutex
	rnd  *rand.Rand
	rule map[Point]*rule
	kill func() // replaced by tests
}

// Parse returns the Injector of spec, or nil (no faults) when spec is empty.
// An error names the bad part of spec.
func Parse(spec string) (*Injector, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	inj := &Injector{spec: spec, rule: map[Point]*rule{}, kill: killSelf}
	seed := uint64(time.Now().UnixNano())
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "seed="); ok {
			s, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q: seed must be an unsigned integer", part)
			}
			seed = s
			continue
		}
		name, how, ok := strings.Cut(part, ":")
		point := Point(name)
		if !ok {
			return nil, fmt.Errorf("%q: want point:probability, point:after=N or seed=N", part)
		}
		if !slices.Contains(Points, point) {
			return nil, fmt.Errorf("%q: unknown point %q (points: %s)", part, point, pointNames())
		}
		if _, dup := inj.rule[point]; dup {
			return nil, fmt.Errorf("%q: point %s given twice", part, point)
		}
		r := &rule{after: -1}
		if v, ok := strings.CutPrefix(how, "after="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%q: after= must be a count of passes, 0 or more", part)
			}
			r.after = n
		} else {
			p, err := strconv.ParseFloat(how, 64)
			if err != nil || p <= 0 || p > 1 {
				return nil, fmt.Errorf("%q: the probability must be in (0, 1]", part)
			}
			r.prob = p
		}
		inj.rule[point] = r
	}
	if len(inj.rule) == 0 {
		return nil, fmt.Errorf("%q: no fault point given", spec)
	}
	inj.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return inj, nil
}

// String returns the spec the Injector was parsed from.
func (i *Injector) String() string {
	if i == nil {
		return ""
	}
	return i.spec
}

// Hook returns Hit as the components' Fault hook, or nil when i is nil.
func (i *Injector) Hook() func(Point) {
	if i == nil {
		return nil
	}
	return i.Hit
}

// Hit counts one pass through point and, when the point's rule says so,
// kills the process with SIGKILL: it never returns then. A point without a
// rule does nothing.
func (i *Injector) Hit(point Point) {
	i.mu.Lock()
	r := i.rule[point]
	if r == nil {
		i.mu.Unlock()
		return
	}
	r.hits++
	hit := r.hits
	fire := (r.after >= 0 && hit == r.after+1) || (r.prob > 0 && i.rnd.Float64() < r.prob)
	if !fire {
		i.mu.Unlock()
		return
	}
	// Keep the lock: no other point passes while the process dies.
	if i.OnKill != nil {
		i.OnKill(point, hit)
	}
	i.kill()
	i.mu.Unlock()
}

// pointNames lists the points' names, comma-separated.
func pointNames() string {
	names := make([]string, len(Points))
	for i, p := range Points {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// killSelf sends SIGKILL to this process and waits for it to land, so that
// the caller does not go on past its point.
func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
