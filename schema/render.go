package schema

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Display returns v as a readable Go value for column type t: nil for NULL,
// bool, int64, float64, a decimal as its digits with the point, a time in
// RFC 3339 (UTC, microseconds), a date as YYYY-MM-DD, json as raw JSON.
func Display(v Value, t Type) any {
	if v.Null {
		return nil
	}
	switch t.Kind {
	case Boolean:
		return v.I != 0
	case Smallint, Integer, Bigint:
		return v.I
	case Real:
		return float32(v.Float())
	case Double:
		return v.Float()
	case Decimal:
		digits := v.S
		if t.Precision <= 18 {
			digits = strconv.FormatInt(v.I, 10)
		}
		return decimalText(digits, t.Scale)
	case Timestamp:
		return time.UnixMicro(v.I).UTC().Format("2006-01-02T15:04:05.000000Z")
	case Date:
		return time.Unix(v.I*86400, 0).UTC().Format("2006-01-02")
	case JSON:
		return json.RawMessage(v.S)
	}
	return v.S
}

func decimalText(digits string, scale int) string {
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	if scale > 0 {
		for len(digits) <= scale {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// orderedRow marshals a row as a JSON object in column order.
type orderedRow struct{ r Row }

func (o orderedRow) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range o.r.Table.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c.Name)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(Display(o.r.Values[i], c.Type))
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// MarshalJSON renders the row as {"table": name, "row": {column: value, …}},
// the form `wharf flatten` prints.
func (r Row) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Table string     `json:"table"`
		Row   orderedRow `json:"row"`
	}{r.Table.Name, orderedRow{r}})
}
