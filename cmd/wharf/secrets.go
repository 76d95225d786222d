package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Secrets never appear in logs, errors or /status (docs/design.md §8). Two layers
// keep them out: redact (config.go) hides anything shaped like a password
// in a DSN, a URI or key=value text, and scrub also hides, wherever they
// appear and however escaped, the values known to be secret: the passwords
// of warehouse.dsn and mongo.uri, deadletter.replay_key, and the AWS secret
// key and session token of the environment. Every log line goes through scrub (newLogger), and so
// does the error that run prints.

// minSecret is the shortest value scrubbed by value: a shorter one would
// blank out common text, and is hidden only by the patterns of redact.
const minSecret = 4

// secretValues returns the secrets of a loaded configuration and of the
// environment, in every form scrub looks for.
func secretValues(c *Config, env Env) []string {
	vals := envSecrets(env)
	vals = append(vals, dsnPasswords(c.Warehouse.DSN)...)
	vals = append(vals, dsnPasswords(c.Mongo.URI)...)
	vals = append(vals, c.Deadletter.ReplayKey)
	return secretForms(vals)
}

// envSecrets returns the secrets that the environment gives (AWS keys, the
// DSNs of WHARF_WAREHOUSE_DSN and WHARF_MONGO_URI, PGPASSWORD), in every
// form scrub looks for.
func envSecrets(env Env) []string {
	vals := []string{env.Get("AWS_SECRET_ACCESS_KEY"), env.Get("AWS_SESSION_TOKEN"), env.Get("PGPASSWORD"), env.Get("WHARF_DEADLETTER_REPLAY_KEY")}
	vals = append(vals, dsnPasswords(env.Get("WHARF_WAREHOUSE_DSN"))...)
	vals = append(vals, dsnPasswords(env.Get("WHARF_MONGO_URI"))...)
	return secretForms(vals)
}

var urlPasswordRE = regexp.MustCompile(`://[^:/@\s]*:([^/\s]*)@`)

// dsnPasswords returns the passwords in a URL DSN (postgres://u:p@h/db,
// mongodb://…) or a keyword DSN (password='p' …), as written and decoded.
func dsnPasswords(dsn string) []string {
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

// secretForms returns each value of at least minSecret bytes as it is and
// as JSON, a query string and a URL path escape it, longest first.
func secretForms(vals []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if len(s) >= minSecret && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, v := range vals {
		if len(v) < minSecret {
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

// scrub hides every known secret in s, then anything redact recognises.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "xxxxx")
	}
	return redact(s)
}

// scrubWriter scrubs what is written through it: each write of zap is one
// whole log line.
type scrubWriter struct {
	w       io.Writer
	secrets []string
}

func (s scrubWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(s.w, scrub(string(p), s.secrets)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Sync flushes the underlying writer when it can.
func (s scrubWriter) Sync() error {
	if f, ok := s.w.(interface{ Sync() error }); ok {
		return f.Sync()
	}
	return nil
}
