//go:build wharffault

package main

import (
	"errors"
	"testing"

	"go.uber.org/zap"
)

// With -tags wharffault, WHARF_FAULT arms the hook, and a bad spec is a
// config error naming it.
func TestFaultArmedWithTag(t *testing.T) {
	hook, err := faultHook(envOf(map[string]string{"WHARF_FAULT": "after_s3_put:after=100"}), zap.NewNop())
	if hook == nil || err != nil {
		t.Fatalf("hook %v, error %v; want a hook", hook != nil, err)
	}
	_, err = faultHook(envOf(map[string]string{"WHARF_FAULT": "nowhere:1"}), zap.NewNop())
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("bad spec: %v, want a config error", err)
	}
}
