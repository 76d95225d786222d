//go:build wharffault

package main

import (
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/internal/fault"
)

// faultHook returns the crash-test hook WHARF_FAULT asks for (nil when it
// is unset): this build has fault injection (-tags wharffault, as the
// tests build it). See internal/fault.
func faultHook(env Env, log *zap.Logger) (func(fault.Point), error) {
	inj, err := fault.Parse(env.Get("WHARF_FAULT"))
	if err != nil {
		return nil, badConfig("WHARF_FAULT: %v", err)
	}
	if inj != nil {
		log.Warn("fault injection armed: this process will kill itself", zap.String("spec", inj.String()))
		inj.OnKill = func(point fault.Point, hit int) {
			log.Warn("fault injected: SIGKILL", zap.String("point", string(point)), zap.Int("hit", hit))
		}
	}
	return inj.Hook(), nil
}
