package main

import (
	"os"
	"sort"
	"strings"
)

// Env is the environment run reads: the process's in main, a map in tests.
// Only cmd/wharf reads it (docs/design.md §8).
type Env interface {
	// Get returns the variable's value, "" when it is not set.
	Get(key string) string
	// Lookup returns the variable's value and whether it is set, so that a
	// variable set to "" can clear a value of the config file.
	Lookup(key string) (string, bool)
	// Names returns the names of the variables set, sorted.
	Names() []string
}

// osEnv is the process's environment.
type osEnv struct{}

func (osEnv) Get(key string) string            { return os.Getenv(key) }
func (osEnv) Lookup(key string) (string, bool) { return os.LookupEnv(key) }
func (osEnv) Names() []string                  { return names(os.Environ()) }

// names returns the sorted names of KEY=VALUE pairs.
func names(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
