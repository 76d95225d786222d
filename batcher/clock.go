package batcher

import "time"

// clock is the batcher's view of time, replaced by a fake in tests so that
// age flushes can be driven without sleeping.
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

// ageTick is how often the age loop looks for old buffers: a tenth of
// MaxAge, between 10 ms and 1 s, so a buffer is flushed at most that late.
func ageTick(maxAge time.Duration) time.Duration {
	return min(max(maxAge/10, 10*time.Millisecond), time.Second)
}
