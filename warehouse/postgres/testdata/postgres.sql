-- ev
LOCK TABLE "wh"."ev" IN SHARE ROW EXCLUSIVE MODE;

CREATE TEMP TABLE "wharf_staging" (LIKE "wh"."ev") ON COMMIT DROP;

INSERT INTO "wh"."ev" ("event_id", "event_time", "received_at", "b", "i16", "i32", "i64", "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j")
SELECT "event_id", "event_time", "received_at", "b", "i16", "i32", "i64", "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j"
FROM (
  SELECT s.*, row_number() OVER (PARTITION BY "event_id" ORDER BY "received_at", "event_time") AS "Wharf_Rank"
  FROM pg_temp."wharf_staging" s
) d
WHERE d."Wharf_Rank" = 1
  AND NOT EXISTS (SELECT 1 FROM "wh"."ev" t WHERE t."event_id" = d."event_id");

-- ev_tags
LOCK TABLE "wh"."ev_tags" IN SHARE ROW EXCLUSIVE MODE;

CREATE TEMP TABLE "wharf_staging" (LIKE "wh"."ev_tags") ON COMMIT DROP;

INSERT INTO "wh"."ev_tags" ("event_id", "event_time", "idx", "tag")
SELECT "event_id", "event_time", "idx", "tag"
FROM (
  SELECT s.*, row_number() OVER (PARTITION BY "event_id", "idx" ORDER BY "event_time") AS "Wharf_Rank"
  FROM pg_temp."wharf_staging" s
) d
WHERE d."Wharf_Rank" = 1
  AND NOT EXISTS (SELECT 1 FROM "wh"."ev_tags" t WHERE t."event_id" = d."event_id" AND t."idx" = d."idx");

-- ledger
INSERT INTO "wh"."wharf_loads" ("file_key", "table_name", "rows", "bytes", "loaded_at")
SELECT k, $2, r, b, now() AT TIME ZONE 'UTC'
FROM unnest($1::text[], $3::bigint[], $4::bigint[]) AS f(k, r, b);
