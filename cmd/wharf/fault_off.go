//go:build !wharffault

package main

import (
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/fault"
)

// faultHook is nil in a production build: WHARF_FAULT, the crash tests'
// self-kill switch, is compiled in only with -tags wharffault (as the tests
// build wharf). When it is set anyway, one line says it is ignored.
func faultHook(env Env, log *zap.Logger) (func(fault.Point), error) {
	if env.Get("WHARF_FAULT") != "" {
		log.Warn("WHARF_FAULT is set but ignored: this build has no fault injection (only builds with -tags wharffault do)")
	}
	return nil, nil
}
