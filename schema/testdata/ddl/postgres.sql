CREATE SCHEMA IF NOT EXISTS "analytics";

CREATE TABLE IF NOT EXISTS "analytics"."actions_taken" (
  "event_id" varchar(64) NOT NULL,
  "event_time" timestamp,
  "received_at" timestamp,
  "user_id" bigint,
  "action" varchar(64),
  "value_0" integer,
  "value_1" integer,
  "price" numeric(10,2),
  "big" numeric(38,4),
  "ok" boolean,
  "ratio" real,
  "score" double precision,
  "small" smallint,
  "born" date,
  "seen" timestamp,
  "payload" jsonb,
  "_extras" jsonb,
  PRIMARY KEY ("event_id")
);

CREATE TABLE IF NOT EXISTS "analytics"."actions_taken_tags" (
  "event_id" varchar(64) NOT NULL,
  "event_time" timestamp,
  "idx" integer NOT NULL,
  "received_at" timestamp,
  "tag" varchar(64),
  PRIMARY KEY ("event_id", "idx")
);

CREATE TABLE IF NOT EXISTS "analytics"."page_views" (
  "event_id" varchar(64) NOT NULL,
  "event_time" timestamp,
  "received_at" timestamp,
  "url" varchar(1024),
  PRIMARY KEY ("event_id")
);

ALTER TABLE "analytics"."actions_taken" ADD COLUMN IF NOT EXISTS "_extras" jsonb;

CREATE TABLE IF NOT EXISTS "analytics"."wharf_loads" (
  "file_key" varchar(1024) PRIMARY KEY,
  "table_name" varchar(127) NOT NULL,
  "rows" bigint NOT NULL,
  "bytes" bigint NOT NULL,
  "loaded_at" timestamp NOT NULL
);

CREATE TABLE IF NOT EXISTS "analytics"."wharf_watermarks" (
  "table_name" varchar(127) PRIMARY KEY,
  "day" date NOT NULL
);

CREATE TABLE IF NOT EXISTS "analytics"."wharf_quarantine" (
  "file_key" varchar(1024) PRIMARY KEY,
  "table_name" varchar(127) NOT NULL,
  "reason" varchar(4096) NOT NULL,
  "quarantined_at" timestamp NOT NULL
);

