package schema

import (
	"strconv"
	"time"
	"unsafe"
)

// parseTime reads the time value at i on the tape: an RFC 3339 string (a
// zone-less "2006-01-02T15:04:05" or "2006-01-02 15:04:05" or a bare date is
// taken as UTC), epoch seconds or milliseconds as a number (an absolute
// value of at least 1e11 is milliseconds), or Mongo extended JSON
// {"$date": …}. ok is false when there is no value (i is 0) or it is null.
func (t *tape) parseTime(i uint32) (tm time.Time, ok bool, err error) {
	if i == 0 || t.toks[i].kind == tNull {
		return time.Time{}, false, nil
	}
	switch k := t.toks[i].kind; k {
	case tString:
		b := t.text(i)
		if tm, ok = parseRFC3339UTC(b); !ok {
			s := unsafe.String(unsafe.SliceData(b), len(b)) // only parsed, never kept
			if tm, err = parseTimeString(s); err != nil {
				return tm, false, invalid(ReasonBadTime, "%q is not an RFC 3339 time", shorten(s, 64))
			}
		}
	case tNumber:
		f := parseFloat(t.text(i))
		if tm, err = epochTime(f); err != nil {
			return tm, false, err
		}
	case tObject:
		dv := t.member(i, "$date")
		if dv == 0 || t.toks[i].n != 1 {
			return tm, false, invalid(ReasonBadTime, "an object time must be {\"$date\": …}")
		}
		if nl := t.member(dv, "$numberLong"); nl != 0 {
			var s []byte
			if t.toks[nl].kind == tString {
				s = t.text(nl)
			}
			ms, perr := strconv.ParseInt(string(s), 10, 64)
			if perr != nil {
				return tm, false, invalid(ReasonBadTime, "bad $numberLong in $date")
			}
			tm = time.UnixMilli(ms).UTC()
		} else if dk := t.toks[dv].kind; dk == tNumber {
			f := parseFloat(t.text(dv))
			if f > 1e15 || f < -1e15 {
				return tm, false, invalid(ReasonTimeOutOfRange, "$date %v ms is out of range", f)
			}
			tm = time.UnixMilli(int64(f)).UTC()
		} else if dk == tString {
			s := string(t.text(dv))
			if tm, err = parseTimeString(s); err != nil {
				return tm, false, invalid(ReasonBadTime, "$date %q is not an RFC 3339 time", shorten(s, 64))
			}
		} else {
			return tm, false, invalid(ReasonBadTime, "$date is a %s", dk)
		}
	default:
		return tm, false, invalid(ReasonBadTime, "a time cannot be a %s", k)
	}
	if tm.Before(minTime) || tm.After(maxTime) {
		return tm, false, invalid(ReasonTimeOutOfRange, "%s is outside years 1 to 9999", tm.Format(time.RFC3339))
	}
	return tm.UTC().Truncate(time.Microsecond), true, nil
}

// parseFloat returns the double nearest to a JSON number (valid syntax); one
// past the largest double is ±Inf.
func parseFloat(b []byte) float64 {
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	return f
}

// parseInt returns a JSON number (valid syntax) of plain digits that fits
// an int64; ok is false for any other (a fraction or an exponent, even of
// an integer, or too large).
func parseInt(b []byte) (n int64, ok bool) {
	d := b
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(b), len(b)), 10, 64)
		return n, err == nil
	}
	for _, c := range d {
		if c-'0' > 9 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(d) < len(b) {
		n = -n
	}
	return n, true
}

// parseRFC3339UTC is time.Parse(time.RFC3339Nano, s)'s own fast path
// (time.parseRFC3339) for the common forms, returning the instant in UTC;
// ok is false where that fast path would fail, and the caller then tries
// every layout (parseTimeString).
func parseRFC3339UTC(s []byte) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05") || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits4(s[0:4])
	month, ok2 := digits2(s[5:7])
	day, ok3 := digits2(s[8:10])
	hour, ok4 := digits2(s[11:13])
	minute, ok5 := digits2(s[14:16])
	sec, ok6 := digits2(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	s = s[19:]
	var nsec int
	if len(s) >= 2 && s[0] == '.' && s[1]-'0' < 10 {
		n := 2
		for n < len(s) && s[n]-'0' < 10 {
			n++
		}
		digits := s[1:min(n, 10)]
		for _, c := range digits {
			nsec = nsec*10 + int(c-'0')
		}
		for range 9 - len(digits) {
			nsec *= 10
		}
		s = s[n:]
	}
	unix := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	if len(s) == 1 && s[0] == 'Z' {
		return time.Unix(unix, int64(nsec)).UTC(), true
	}
	if len(s) != len("-07:00") || s[0] != '-' && s[0] != '+' || s[3] != ':' {
		return time.Time{}, false
	}
	hr, ok1 := digits2(s[1:3])
	mm, ok2 := digits2(s[4:6])
	if !ok1 || !ok2 || hr > 23 || mm > 59 {
		return time.Time{}, false
	}
	off := (hr*60 + mm) * 60
	if s[0] == '-' {
		off = -off
	}
	return time.Unix(unix-int64(off), int64(nsec)).UTC(), true
}

// daysFromCivil returns the days from 1970-01-01 to the proleptic Gregorian
// date y-m-d (Howard Hinnant's days_from_civil), for years 0 to 9999.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

func digits2(b []byte) (int, bool) {
	d0, d1 := b[0]-'0', b[1]-'0'
	return int(d0)*10 + int(d1), d0 < 10 && d1 < 10
}

func digits4(b []byte) (int, bool) {
	hi, ok1 := digits2(b[0:2])
	lo, ok2 := digits2(b[2:4])
	return hi*100 + lo, ok1 && ok2
}

// daysIn is the number of days in month m of year y (time's daysIn).
func daysIn(m, y int) int {
	if m == 2 {
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 30 + (m+m/8)%2
}
