package schema

import "time"

// EventTime returns the event_time that Flatten gives the rows of table t
// (a parent table): the value at t's time path, or the envelope's time when
// t has none or the event lacks it. An unreadable time at t's path returns
// an *InvalidError, as Flatten would. ev must come from this Decoder's last
// Decode. Backfill uses it to apply --since and --until before flattening.
func (d *Decoder) EventTime(ev *Event, t *Table) (time.Time, error) {
	if t.timePath == nil || ev.tape != &d.tp {
		return ev.Time, nil
	}
	tt, ok, err := d.tp.parseTime(d.tp.get(0, t.timePath))
	if err != nil {
		return ev.Time, withColumn(err, t.Name, "time", t.Time)
	}
	if !ok {
		return ev.Time, nil
	}
	return tt, nil
}
