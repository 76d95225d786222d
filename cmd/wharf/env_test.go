package main

import "sort"

// mapEnv is an environment held in a map.
type mapEnv map[string]string

func (m mapEnv) Get(key string) string { return m[key] }
func (m mapEnv) Lookup(key string) (string, bool) {
	v, ok := m[key]
	return v, ok
}
func (m mapEnv) Names() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
