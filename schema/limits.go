package schema

// MaxJSONBytes is the longest JSON text a json column (and _extras) takes.
// Redshift's COPY of Parquet loads a string into a SUPER column as a SUPER
// string, not as the JSON it holds, so the loader stages json columns as
// VARCHAR(65535) and parses them with JSON_PARSE: a longer value would fail
// the COPY, and Parquet COPY has no MAXERROR. Files must load on either
// warehouse, so the limit holds for PostgreSQL too.
const MaxJSONBytes = MaxVarchar

// checkJSONSize sends an event whose json value (n bytes of text) is too
// long to store to the dead-letter store (too_large), rather than
// truncating JSON.
func checkJSONSize(n int) error {
	if n > MaxJSONBytes {
		return invalid(ReasonTooLarge, "the JSON value is %d bytes, more than the %d a json column holds", n, MaxJSONBytes)
	}
	return nil
}
