package stacktest

import (
	"testing"
	"time"
)

// WaitFor calls cond until it returns true, or timeout passes, and reports
// whether it did. It is how tests wait for a state that no channel
// announces (a row in the warehouse, a line in a log, a counter on
// /metrics): it looks at once, then again at growing intervals (1 ms,
// doubling, at most 250 ms), so a state reached soon is seen soon and one
// that takes minutes costs few looks. cond runs on the caller's goroutine
// and may call t.Fatal.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 250*time.Millisecond) {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(wait)
	}
	return true
}

// Eventually is WaitFor that fails t, naming what it waited for, when
// timeout passes first.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !WaitFor(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}
