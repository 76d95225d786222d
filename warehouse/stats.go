package warehouse

import (
	"maps"
	"sync"
)

// Stats is a snapshot of what this Loader has done since it started, per
// table; a table appears once a load has listed its files.
type Stats struct {
	Tables map[string]TableStats `json:"tables"`
}

// TableStats is what a Loader has done to one table since it started.
type TableStats struct {
	Files       int64 `json:"files"`       // files merged and recorded in the ledger
	Rows        int64 `json:"rows"`        // rows added to the table
	Errors      int64 `json:"errors"`      // loads of the table that ended in an error
	Quarantined int64 `json:"quarantined"` // files set aside because they cannot load
	Pending     int   `json:"pending"`     // files found not yet loaded at the last listing, less those loaded since
}

// Rows returns the rows added, across tables.
func (s Stats) Rows() int64 {
	var n int64
	for _, t := range s.Tables {
		n += t.Rows
	}
	return n
}

// stats keeps a Loader's Stats.
type stats struct {
	mu     sync.Mutex
	tables map[string]TableStats
}

// update changes table's stats with f.
func (s *stats) update(table string, f func(*TableStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tables == nil {
		s.tables = map[string]TableStats{}
	}
	t := s.tables[table]
	f(&t)
	s.tables[table] = t
}

// Stats returns what the loader has done since it started.
func (l *Loader) Stats() Stats {
	l.stats.mu.Lock()
	defer l.stats.mu.Unlock()
	return Stats{Tables: maps.Clone(l.stats.tables)}
}
