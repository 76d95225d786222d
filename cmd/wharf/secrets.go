package main

import "github.com/wharfdata/wharf/internal/secret"

// Secrets never appear in logs, errors or /status (docs/design.md §8):
// every log line goes through secret.Writer (newLogger), and so does the
// error that run prints. The values known to be secret are the passwords of
// warehouse.dsn and mongo.uri, deadletter.replay_key, and the AWS secret
// key and session token of the environment.

// secretValues returns the secrets of a loaded configuration and of the
// environment, in every form scrub looks for.
func secretValues(c *Config, env Env) []string {
	vals := envSecrets(env)
	vals = append(vals, secret.DSNPasswords(c.Warehouse.DSN)...)
	vals = append(vals, secret.DSNPasswords(c.Mongo.URI)...)
	vals = append(vals, c.Deadletter.ReplayKey)
	return secret.Forms(vals)
}

// envSecrets returns the secrets that the environment gives (AWS keys, the
// DSNs of WHARF_WAREHOUSE_DSN and WHARF_MONGO_URI, PGPASSWORD), in every
// form scrub looks for.
func envSecrets(env Env) []string {
	vals := []string{env.Get("AWS_SECRET_ACCESS_KEY"), env.Get("AWS_SESSION_TOKEN"), env.Get("PGPASSWORD"), env.Get("WHARF_DEADLETTER_REPLAY_KEY")}
	vals = append(vals, secret.DSNPasswords(env.Get("WHARF_WAREHOUSE_DSN"))...)
	vals = append(vals, secret.DSNPasswords(env.Get("WHARF_MONGO_URI"))...)
	return secret.Forms(vals)
}

// scrub hides every known secret in s, then anything redact recognises.
func scrub(s string, secrets []string) string { return secret.Scrub(s, secrets) }

// redact hides passwords in a DSN or URI, and secrets written as key=value.
func redact(s string) string { return secret.Redact(s) }
