package schema

import (
	"strings"
	"testing"
	"time"
)

// TestJSONSizeLimit: a json column or _extras longer than MaxJSONBytes
// dead-letters the event (too_large) instead of writing a file Redshift's
// COPY would refuse; one at the limit passes.
func TestJSONSizeLimit(t *testing.T) {
	s, err := Parse([]byte(`
tables:
  - name: ev
    events: [ev]
    columns:
      - {name: j, path: j, type: json}
    extras: true
    children:
      - name: ev_items
        path: items
        columns:
          - {name: v, path: ., type: json}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(s, DefaultEnvelope())
	str := func(n int) string { return `"` + strings.Repeat("x", n-2) + `"` } // n bytes of JSON
	cases := []struct {
		name, body string
		reason     string
	}{
		{"json at the limit", `{"event":"ev","id":"1","j":` + str(MaxJSONBytes) + `}`, ""},
		{"json over", `{"event":"ev","id":"2","j":` + str(MaxJSONBytes+1) + `}`, ReasonTooLarge},
		{"extras over", `{"event":"ev","id":"3","other":` + str(MaxJSONBytes) + `}`, ReasonTooLarge},
		{"child json over", `{"event":"ev","id":"4","items":[1,` + str(MaxJSONBytes+1) + `]}`, ReasonTooLarge},
	}
	for _, c := range cases {
		ev, err := d.Decode([]byte(c.body), "m", time.Now())
		if err == nil {
			_, err = d.Flatten(ev, nil)
		}
		if got := Reason(err); got != c.reason {
			t.Errorf("%s: reason %q (%v), want %q", c.name, got, err, c.reason)
		}
	}
}
