package ingest

import "time"

// clock is the consumer's view of time, replaced by a fake in tests so that
// heartbeats and visibility extensions can be driven without sleeping. (The
// batcher declares the same two methods for its age flushes: each package
// declares the interface it uses.)
type clock interface {
	Now() time.Time
	// Ticker returns a channel that receives every d, and a stop function.
	Ticker(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// extendTick is how often the extender looks for messages due an
// extension: a twentieth of the visibility timeout, between 100 ms and 2 s.
func extendTick(visibility time.Duration) time.Duration {
	return min(max(visibility/20, 100*time.Millisecond), 2*time.Second)
}
