package stacktest

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyNoLeaks runs a package's tests and then fails them if a goroutine
// they started is still running (go.uber.org/goleak). It is the package's
// TestMain:
//
//	func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }
//
// Only the idle keep-alive connections of HTTP clients (the AWS SDK's, to
// the stack's S3 and SQS) are let be: their transport keeps them until they
// time out, and they belong to no test. opts adds what a package's own
// dependencies leave.
func VerifyNoLeaks(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, append([]goleak.Option{
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	}, opts...)...)
}
