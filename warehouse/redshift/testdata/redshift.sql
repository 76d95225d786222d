-- apply
SELECT count(*) FROM pg_namespace WHERE nspname = $1;

SELECT table_name, column_name, data_type,
  coalesce(character_maximum_length, 0), coalesce(numeric_precision, 0), coalesce(numeric_scale, 0)
FROM information_schema.columns
WHERE table_schema = $1
ORDER BY table_name, ordinal_position;

CREATE SCHEMA IF NOT EXISTS "wh";

CREATE TABLE IF NOT EXISTS "wh"."ev" (
  "event_id" varchar(64) NOT NULL,
  "event_time" timestamp,
  "received_at" timestamp,
  "b" boolean,
  "i16" smallint,
  "i32" integer,
  "i64" bigint,
  "f32" real,
  "f64" double precision,
  "d_small" decimal(12,2),
  "d_big" decimal(38,4),
  "s" varchar(16),
  "ts" timestamp,
  "day" date,
  "j" SUPER
)
DISTSTYLE AUTO
COMPOUND SORTKEY ("event_time")
ENCODE AUTO;

CREATE TABLE IF NOT EXISTS "wh"."ev_tags" (
  "event_id" varchar(64) NOT NULL,
  "event_time" timestamp,
  "idx" integer NOT NULL,
  "received_at" timestamp,
  "tag" varchar(8)
)
DISTSTYLE AUTO
COMPOUND SORTKEY ("event_time")
ENCODE AUTO;

ALTER TABLE "wh"."ev" ADD COLUMN "j" SUPER;

CREATE TABLE IF NOT EXISTS "wh"."wharf_loads" (
  "file_key" varchar(1024) PRIMARY KEY,
  "table_name" varchar(127) NOT NULL,
  "rows" bigint NOT NULL,
  "bytes" bigint NOT NULL,
  "loaded_at" timestamp NOT NULL
)
SORTKEY ("file_key");

CREATE TABLE IF NOT EXISTS "wh"."wharf_watermarks" (
  "table_name" varchar(127) PRIMARY KEY,
  "day" date NOT NULL
);

CREATE TABLE IF NOT EXISTS "wh"."wharf_quarantine" (
  "file_key" varchar(1024) PRIMARY KEY,
  "table_name" varchar(127) NOT NULL,
  "reason" varchar(4096) NOT NULL,
  "quarantined_at" timestamp NOT NULL
);

-- pending files
SELECT "file_key" FROM "wh"."wharf_loads" WHERE "file_key" IN ($1, $2, $3);

SELECT count(*) FROM stv_slices;

-- merge ev
CREATE TABLE IF NOT EXISTS "wh"."wharf_lock_ev" ("locked" integer);

LOCK "wh"."wharf_lock_ev";

SELECT "file_key" FROM "wh"."wharf_loads" WHERE "file_key" IN ($1, $2);

CREATE TEMP TABLE "wharf_staging" (
  "event_id" varchar(64),
  "event_time" timestamp,
  "received_at" timestamp,
  "b" boolean,
  "i16" smallint,
  "i32" integer,
  "i64" bigint,
  "f32" real,
  "f64" double precision,
  "d_small" decimal(12,2),
  "d_big" decimal(38,4),
  "s" varchar(16),
  "ts" timestamp,
  "day" date,
  "j" varchar(65535)
);

COPY "wharf_staging" ("event_id", "event_time", "received_at", "b", "i16", "i32", "i64", "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j")
FROM 's3://bucket/events/_manifests/ev/01JDX0000000000000000000.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/wharf-copy'
FORMAT AS PARQUET
MANIFEST
STATUPDATE OFF;

CREATE TEMP TABLE "wharf_staging_1" (
  "event_id" varchar(64),
  "event_time" timestamp,
  "received_at" timestamp,
  "b" boolean,
  "i16" smallint,
  "i32" integer,
  "i64" integer,
  "f32" real,
  "f64" double precision,
  "d_small" decimal(12,2),
  "d_big" decimal(38,4),
  "s" varchar(16),
  "ts" timestamp,
  "day" date,
  "j" varchar(65535)
);

INSERT INTO "wharf_staging" ("event_id", "event_time", "received_at", "b", "i16", "i32", "i64", "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j")
SELECT "event_id", "event_time", "received_at", "b", "i16", "i32", CAST("i64" AS bigint), "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j" FROM "wharf_staging_1";

SELECT min("event_time"), max("event_time"), count(*) FROM "wharf_staging";

INSERT INTO "wh"."ev" ("event_id", "event_time", "received_at", "b", "i16", "i32", "i64", "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j")
SELECT d."event_id", d."event_time", d."received_at", d."b", d."i16", d."i32", d."i64", d."f32", d."f64", d."d_small", d."d_big", d."s", d."ts", d."day", JSON_PARSE(d."j")
FROM (
  SELECT s.*, ROW_NUMBER() OVER (PARTITION BY "event_id" ORDER BY "received_at", "event_time") AS "wharf rank"
  FROM "wharf_staging" s
) d
LEFT JOIN (
  SELECT "event_id" FROM "wh"."ev"
  WHERE "event_time" BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
) t ON t."event_id" = d."event_id"
WHERE d."wharf rank" = 1
  AND t."event_id" IS NULL;

DELETE FROM "wh"."ev_tags" USING "wh"."ev"
WHERE "wh"."ev_tags"."event_id" = "wh"."ev"."event_id" AND "wh"."ev_tags"."received_at" <> "wh"."ev"."received_at"
  AND "wh"."ev"."event_time" BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
  AND "wh"."ev"."event_id" IN (SELECT "event_id" FROM "wharf_staging");

INSERT INTO "wh"."wharf_loads" ("file_key", "table_name", "rows", "bytes", "loaded_at") VALUES
($1, $2, $3, $4, CAST($5 AS timestamp)),
($6, $7, $8, $9, CAST($10 AS timestamp));

DROP TABLE "wharf_staging";

-- merge ev_tags
CREATE TABLE IF NOT EXISTS "wh"."wharf_lock_ev_tags" ("locked" integer);

LOCK "wh"."wharf_lock_ev_tags";

SELECT "file_key" FROM "wh"."wharf_loads" WHERE "file_key" IN ($1, $2);

CREATE TEMP TABLE "wharf_staging" (
  "event_id" varchar(64),
  "event_time" timestamp,
  "idx" integer,
  "received_at" timestamp,
  "tag" varchar(8)
);

COPY "wharf_staging" ("event_id", "event_time", "idx", "received_at", "tag")
FROM 's3://bucket/events/_manifests/ev_tags/01JDX0000000000000000000.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/wharf-copy'
FORMAT AS PARQUET
MANIFEST
STATUPDATE OFF;

COPY "wharf_staging" ("event_id", "event_time", "idx", "received_at", "tag")
FROM 's3://bucket/events/_manifests/ev_tags/01JDX0000000000000000000.manifest'
IAM_ROLE default
FORMAT AS PARQUET
MANIFEST
STATUPDATE OFF;

SELECT min("event_time"), max("event_time"), count(*) FROM "wharf_staging";

INSERT INTO "wh"."ev_tags" ("event_id", "event_time", "idx", "received_at", "tag")
SELECT d."event_id", d."event_time", d."idx", d."received_at", d."tag"
FROM (
  SELECT s.*, ROW_NUMBER() OVER (PARTITION BY "event_id", "idx", "received_at" ORDER BY "event_time") AS "wharf rank"
  FROM "wharf_staging" s
) d
LEFT JOIN (
  SELECT "event_id", "idx", "received_at" FROM "wh"."ev_tags"
  WHERE "event_time" BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
) t ON t."event_id" = d."event_id" AND t."idx" = d."idx" AND (d."received_at" IS NULL OR t."received_at" IS NULL OR t."received_at" = d."received_at")
LEFT JOIN (
  SELECT "event_id", "received_at" FROM "wh"."ev"
  WHERE "event_time" BETWEEN CAST($1 AS timestamp) AND CAST($2 AS timestamp)
) p ON p."event_id" = d."event_id" AND d."received_at" IS NOT NULL AND p."received_at" <> d."received_at"
WHERE d."wharf rank" = 1
  AND t."event_id" IS NULL
  AND p."event_id" IS NULL;

INSERT INTO "wh"."wharf_loads" ("file_key", "table_name", "rows", "bytes", "loaded_at") VALUES
($1, $2, $3, $4, CAST($5 AS timestamp)),
($6, $7, $8, $9, CAST($10 AS timestamp));

DROP TABLE "wharf_staging";

-- after a failed COPY
SELECT coalesce(trim(file_name), ''), coalesce(trim(column_name), ''), coalesce(trim(column_type), ''),
  coalesce(trim(column_length), ''), coalesce(error_code, 0), coalesce(trim(error_message), '')
FROM sys_load_error_detail
WHERE session_id = pg_backend_pid() AND start_time >= CAST($1 AS timestamp)
ORDER BY start_time
LIMIT 20;

-- watermark
SELECT CAST("day" AS varchar(10)) FROM "wh"."wharf_watermarks" WHERE "table_name" = $1;

LOCK "wh"."wharf_watermarks";

INSERT INTO "wh"."wharf_watermarks" ("table_name", "day") VALUES ($1, CAST($2 AS date));

UPDATE "wh"."wharf_watermarks" SET "day" = CAST($1 AS date) WHERE "table_name" = $2;

-- manifest
{
  "entries": [
    {
      "url": "s3://bucket/events/ev/dt=2026-11-25/01JDX1.parquet",
      "mandatory": true,
      "meta": {
        "content_length": 1234
      }
    },
    {
      "url": "s3://bucket/events/ev/dt=2026-11-25/01JDX2.parquet",
      "mandatory": true,
      "meta": {
        "content_length": 98765
      }
    }
  ]
}
