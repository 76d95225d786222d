-- ev
LOCK TABLE "wh"."ev", "wh"."ev_tags" IN SHARE ROW EXCLUSIVE MODE;

CREATE TEMP TABLE "wharf_staging" (LIKE "wh"."ev") ON COMMIT DROP;

INSERT INTO "wh"."ev" ("event_id", "event_time", "received_at", "b", "i16", "i32", "i64", "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j")
SELECT "event_id", "event_time", "received_at", "b", "i16", "i32", "i64", "f32", "f64", "d_small", "d_big", "s", "ts", "day", "j"
FROM (
  SELECT s.*, row_number() OVER (PARTITION BY "event_id" ORDER BY "received_at", "event_time") AS "Wharf_Rank"
  FROM pg_temp."wharf_staging" s
) d
WHERE d."Wharf_Rank" = 1
  AND NOT EXISTS (SELECT 1 FROM "wh"."ev" t WHERE t."event_id" = d."event_id");

DELETE FROM "wh"."ev_tags" USING "wh"."ev" p
WHERE "wh"."ev_tags"."event_id" = p."event_id" AND "wh"."ev_tags"."received_at" <> p."received_at"
  AND p."event_id" IN (SELECT "event_id" FROM pg_temp."wharf_staging");

-- ev_tags
LOCK TABLE "wh"."ev_tags" IN SHARE ROW EXCLUSIVE MODE;

CREATE TEMP TABLE "wharf_staging" (LIKE "wh"."ev_tags") ON COMMIT DROP;

INSERT INTO "wh"."ev_tags" ("event_id", "event_time", "idx", "received_at", "tag")
SELECT "event_id", "event_time", "idx", "received_at", "tag"
FROM (
  SELECT s.*, row_number() OVER (PARTITION BY "event_id", "idx", "received_at" ORDER BY "event_time") AS "Wharf_Rank"
  FROM pg_temp."wharf_staging" s
) d
WHERE d."Wharf_Rank" = 1
  AND NOT EXISTS (SELECT 1 FROM "wh"."ev_tags" t WHERE t."event_id" = d."event_id" AND t."idx" = d."idx"
    AND (d."received_at" IS NULL OR t."received_at" IS NULL OR t."received_at" = d."received_at"))
  AND (d."received_at" IS NULL OR NOT EXISTS (SELECT 1 FROM "wh"."ev" p WHERE p."event_id" = d."event_id" AND p."received_at" <> d."received_at"));

-- ledger
INSERT INTO "wh"."wharf_loads" ("file_key", "table_name", "rows", "bytes", "loaded_at")
SELECT k, $2, r, b, now() AT TIME ZONE 'UTC'
FROM unnest($1::text[], $3::bigint[], $4::bigint[]) AS f(k, r, b);
