package warehouse

import (
	"flag"
	"testing"

	"github.com/wharfdata/wharf/internal/stacktest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { stacktest.VerifyNoLeaks(m) }
