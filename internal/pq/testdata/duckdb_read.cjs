// duckdb_read.cjs DIR FILE: reads the Parquet file FILE with DuckDB (the
// @duckdb/node-api package installed under DIR, deploy/local) and prints
// {"version", "columns": [{"name", "type"}], "rows": [[...]]} as JSON, rows in
// file order, each value as text, or null for NULL:
//
//	BOOLEAN, integers, DECIMAL, VARCHAR   DuckDB's cast to VARCHAR
//	FLOAT, DOUBLE                         the value as a double, shortest round-trip text
//	TIMESTAMP [WITH TIME ZONE]            microseconds since the Unix epoch
//	DATE                                  days since 1970-01-01
//
// Used by internal/pq's TestDuckDBReadsEveryType.
'use strict';
const { createRequire } = require('node:module');
const path = require('node:path');

const [dir, file] = process.argv.slice(2);
if (!dir || !file) {
	console.error('usage: node duckdb_read.cjs DIR FILE');
	process.exit(2);
}
const { DuckDBInstance } = createRequire(path.join(path.resolve(dir), 'package.json'))('@duckdb/node-api');

const lit = (s) => "'" + s.replaceAll("'", "''") + "'";
const ident = (s) => '"' + s.replaceAll('"', '""') + '"';

function expr(name, type) {
	const c = ident(name);
	if (/^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|VARCHAR)$/.test(type) || /^DECIMAL\(/.test(type)) {
		return `CAST(${c} AS VARCHAR)`;
	}
	if (type === 'FLOAT' || type === 'DOUBLE') return `CAST(${c} AS DOUBLE)`;
	if (type === 'TIMESTAMP WITH TIME ZONE' || type === 'TIMESTAMP') return `CAST(epoch_us(${c}) AS VARCHAR)`;
	if (type === 'DATE') return `CAST(${c} - DATE '1970-01-01' AS VARCHAR)`;
	throw new Error(`column ${name}: unexpected DuckDB type ${type}`);
}

function text(v) {
	if (v === null || v === undefined) return null;
	if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
	if (typeof v === 'string') return v;
	throw new Error(`unexpected value ${v} (${typeof v})`);
}

(async () => {
	const db = await DuckDBInstance.create(':memory:');
	const con = await db.connect();
	const src = `read_parquet(${lit(file)}, file_row_number = true)`;
	const version = (await con.runAndReadAll('SELECT version()')).getRows()[0][0];
	const desc = (await con.runAndReadAll(`DESCRIBE SELECT * EXCLUDE (file_row_number) FROM ${src}`)).getRowObjects();
	const columns = desc.map((d) => ({ name: d.column_name, type: d.column_type }));
	const sql = `SELECT ${columns.map((c) => expr(c.name, c.type)).join(', ')} FROM ${src} ORDER BY file_row_number`;
	const rows = (await con.runAndReadAll(sql)).getRows().map((r) => r.map(text));
	process.stdout.write(JSON.stringify({ version, columns, rows }));
})().catch((err) => {
	console.error(String(err && err.stack ? err.stack : err));
	process.exit(1);
});
