-- Restricted tables: raw events as services sent them (for replay) and dead letters (bad input
-- with its reason). Both may hold personal data, so both keep only ${raw_retention_days} days,
-- counted from receipt, in daily partitions that TTL drops whole.
CREATE TABLE IF NOT EXISTS raw_events
(
    event_id     String,
    trace_id     String,
    type         LowCardinality(String),
    occurred_at  DateTime64(6, 'UTC'),
    received_at  DateTime64(6, 'UTC'),
    origin       LowCardinality(String),
    payload      String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (trace_id, event_id)
TTL toDateTime(received_at) + INTERVAL ${raw_retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, fsync_after_insert = 1, fsync_part_directory = 1;

-- dead_letter_id is derived from the source coordinates (topic/partition/offset) or, for HTTP,
-- from the payload, so the same bad input re-sent is stored once.
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_letter_id  String,
    received_at     DateTime64(6, 'UTC'),
    reason          String,
    payload         String CODEC(ZSTD(3)),
    origin          LowCardinality(String),
    topic           String,
    partition       Nullable(Int32),
    offset          Nullable(Int64),
    event_id        String,
    trace_id        String
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMMDD(received_at)
ORDER BY dead_letter_id
TTL toDateTime(received_at) + INTERVAL ${raw_retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, fsync_after_insert = 1, fsync_part_directory = 1;
