package deadletter

import (
	"testing"

	"github.com/wharfdata/wharf/internal/stacktest"
)

func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }
