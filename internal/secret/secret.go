// Package secret keeps secrets out of logs, errors and /status
// (docs/design.md §8). Two layers: Redact hides anything shaped like a
// password in a DSN, a URI or key=value text, and Scrub also hides,
// wherever they appear and however escaped (Forms), the values known to be
// secret. Every log line goes through a Writer.
package secret

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

var (
	// The password of a URL, up to the last @ before the path (an
	// unescaped @ may be part of it, as url.Parse reads it).
	userinfoRE = regexp.MustCompile(`(://[^:/@\s]*:)[^/\s]*@`)
	// key=value (a libpq keyword DSN, a query string) and "key":"value"
	// (JSON) forms, the value quoted or not.
	passwordRE = regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret_?access_?key|session_?token|security-token|sslpassword)"?\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|(?:[^\s&,;'"\\]|\\.)+)`)
	// The password of a URL DSN, captured.
	urlPasswordRE = regexp.MustCompile(`://[^:/@\s]*:([^/\s]*)@`)
)

// Redact hides passwords in a DSN or URI, and secrets written as key=value
// or "key":"value", for logs and errors. Values known to be secret are
// hidden wherever they appear by Scrub, which calls Redact too.
func Redact(s string) string {
	s = userinfoRE.ReplaceAllString(s, "${1}xxxxx@")
	return passwordRE.ReplaceAllString(s, "${1}xxxxx")
}

// MinLength is the shortest value scrubbed by value: a shorter one would
// blank out common text, and is hidden only by the patterns of Redact.
const MinLength = 4

// DSNPasswords returns the passwords in a URL DSN (postgres://u:p@h/db,
// mongodb://…) or a keyword DSN (password='p' …), as written and decoded.
func DSNPasswords(dsn string) []string {
	if dsn == "" {
		return nil
	}
	var out []string
	for _, m := range urlPasswordRE.FindAllStringSubmatch(dsn, -1) {
		out = append(out, m[1])
		if p, err := url.PathUnescape(m[1]); err == nil {
			out = append(out, p)
		}
	}
	for _, m := range passwordRE.FindAllStringSubmatch(dsn, -1) {
		v := m[2]
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') {
			v = v[1 : len(v)-1]
			out = append(out, v, strings.NewReplacer(`\'`, `'`, `\\`, `\`, `\"`, `"`).Replace(v))
			continue
		}
		out = append(out, v)
		if p, err := url.QueryUnescape(v); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Forms returns each value of at least MinLength bytes as it is and as
// JSON, a query string and a URL path escape it, longest first: what Scrub
// looks for.
func Forms(vals []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if len(s) >= MinLength && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, v := range vals {
		if len(v) < MinLength {
			continue
		}
		add(v)
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(v) == nil {
			add(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(b.String()), `"`), `"`))
		}
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Scrub hides every one of secrets (as Forms returns them) in s, then
// anything Redact recognises.
func Scrub(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "xxxxx")
	}
	return Redact(s)
}

// Writer scrubs what is written through it: each write of zap is one whole
// log line.
type Writer struct {
	W       io.Writer
	Secrets []string // as Forms returns them
}

func (s Writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(s.W, Scrub(string(p), s.Secrets)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Sync flushes the underlying writer when it can.
func (s Writer) Sync() error {
	if f, ok := s.W.(interface{ Sync() error }); ok {
		return f.Sync()
	}
	return nil
}
