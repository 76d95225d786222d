package s3store_test

import (
	"testing"

	"github.com/wharfdata/wharf/internal/s3store"
	"github.com/wharfdata/wharf/internal/s3store/s3storetest"
	"github.com/wharfdata/wharf/internal/stacktest"
)

// The real store keeps the contract on the local stack's S3 (fauxqs).
func TestContract(t *testing.T) {
	st := stacktest.Get(t)
	s3storetest.Run(t, s3store.New(st.S3(t), st.Bucket), st.Prefix())
}

// Mem, the fake the other packages' tests use, keeps the same contract.
func TestMemContract(t *testing.T) {
	s3storetest.Run(t, &s3storetest.Mem{}, "p/")
}
