//go:build !wharffault

package main

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A production build ignores WHARF_FAULT (issue 13, item 7): no hook, not
// even a spec check, and one line saying so; nothing when it is unset. The
// tests' wharf binary is built with -tags wharffault (binaries), where the
// chaos tests prove the hook fires.
func TestFaultInertInProductionBuild(t *testing.T) {
	for _, spec := range []string{"after_s3_put:1", "not a spec", ""} {
		core, logs := observer.New(zap.InfoLevel)
		hook, err := faultHook(envOf(map[string]string{"WHARF_FAULT": spec}), zap.New(core))
		if hook != nil || err != nil {
			t.Errorf("WHARF_FAULT=%q: hook %v, error %v; want neither", spec, hook != nil, err)
		}
		want := 1
		if spec == "" {
			want = 0
		}
		if n := logs.FilterMessageSnippet("WHARF_FAULT is set but ignored").Len(); n != want || logs.Len() != want {
			t.Errorf("WHARF_FAULT=%q: %d lines (%v), want %d saying it is ignored", spec, logs.Len(), logs.All(), want)
		}
	}
}
