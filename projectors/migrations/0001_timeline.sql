-- Timeline events: what support reads. One row per (trace_id, event_id) after merges; every
-- read still deduplicates with `LIMIT 1 BY event_id`, because merges are eventual and a
-- re-sent event may sit in another part until they run.
-- Sorted by trace for the trace chain; the two projections give customer and job lookups
-- their own sort order without a second write path. ReplacingMergeTree needs
-- deduplicate_merge_projection_mode to keep projections consistent with merged rows.
-- ${retention_days} is the configured retention at creation; `Store.migrate` re-applies the
-- configured value on every start so the TTL in force never drifts from settings.
CREATE TABLE IF NOT EXISTS timeline_events
(
    event_id        String,
    trace_id        String,
    type            LowCardinality(String),
    label           LowCardinality(String),
    lane            Enum8('customer' = 1, 'system' = 2),
    occurred_at     DateTime64(6, 'UTC'),
    source          LowCardinality(String),
    status          LowCardinality(String),
    attempt         Nullable(UInt16),
    error_code      LowCardinality(String),
    reason          String,
    customer_id     String,
    workspace_id    String,
    order_id        String,
    job_id          String,
    request_id      String,
    fields          Map(String, String),
    field_rules     Map(String, String),
    lookup_keys     Array(String),
    dropped         UInt32,
    rules_version   LowCardinality(String),
    schema_version  UInt8,
    ingested_at     DateTime64(6, 'UTC'),
    PROJECTION by_customer (SELECT * ORDER BY customer_id, occurred_at, event_id),
    PROJECTION by_job (SELECT * ORDER BY job_id, occurred_at, event_id)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (trace_id, event_id)
TTL toDateTime(occurred_at) + INTERVAL ${retention_days} DAY
SETTINGS deduplicate_merge_projection_mode = 'rebuild', fsync_after_insert = 1, fsync_part_directory = 1;

-- Id-only index of every event ever accepted for a trace: no personal data, no TTL. It lets the
-- trace chain say "removed by retention" instead of showing a gap when the timeline TTL has
-- removed a step. Fed by a materialized view so every writer (collector, Kafka projector)
-- fills it without extra code.
CREATE TABLE IF NOT EXISTS trace_index
(
    trace_id     String,
    event_id     String,
    type         LowCardinality(String),
    lane         Enum8('customer' = 1, 'system' = 2),
    job_id       String,
    request_id   String,
    occurred_at  DateTime64(6, 'UTC'),
    INDEX job_id_bloom job_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
ORDER BY (trace_id, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_index_mv TO trace_index AS
SELECT trace_id, event_id, type, lane, job_id, request_id, occurred_at
FROM timeline_events;

-- Lookup key (keyed HMAC of an email or phone a rule kept) -> customer, so support can find a
-- customer by what the customer says without the value being stored anywhere.
CREATE TABLE IF NOT EXISTS customer_lookup
(
    lookup_key   String,
    customer_id  String,
    last_seen    DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(last_seen)
ORDER BY (lookup_key, customer_id)
TTL toDateTime(last_seen) + INTERVAL ${retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS customer_lookup_mv TO customer_lookup AS
SELECT arrayJoin(lookup_keys) AS lookup_key, customer_id, occurred_at AS last_seen
FROM timeline_events
WHERE customer_id != '' AND notEmpty(lookup_keys);
