package schema

import (
	"testing"
	"time"
)

// refEvent is a realistic ~300-byte event.
const refEvent = `{"event":"actions_taken","id":"6655f0e2a1b2c3d4e5f60718","timestamp":"2026-11-25T10:40:00.123Z","date":1732531200000,"user_id":123456789,"action":"add_to_cart","target":{"id":"item-4242","type":"item"},"meta":{"ua":"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)","app":"3.14.1"},"value":[12,7],"tags":["promo","mobile"]}`

func BenchmarkDecodeFlatten(b *testing.B) {
	s, err := Parse([]byte(`tables:
  - name: actions_taken
    events: [actions_taken]
    time: date
    columns:
      - {name: user_id,   path: user_id,   type: bigint}
      - {name: action,    path: action,    type: varchar(64)}
      - {name: target,    path: target.id, type: varchar(128)}
      - {name: client_ua, path: meta.ua,   type: varchar(512)}
      - {name: value,     path: value,     type: integer, expand: 3}
    extras: true
    children:
      - name: actions_taken_tags
        path: tags
        columns:
          - {name: tag, path: ., type: varchar(64)}
`))
	if err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(s, DefaultEnvelope())
	body := []byte(refEvent)
	now := time.Now()
	rows := make([]Row, 0, 8)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ev, err := d.Decode(body, "m", now)
		if err != nil {
			b.Fatal(err)
		}
		rows, err = d.Flatten(ev, rows[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
