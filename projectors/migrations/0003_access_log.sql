-- Who read which record, when, through which route. Kept without TTL: it is the audit trail.
-- Written only through `Store.log_access`, so tamper evidence can be added in one place.
CREATE TABLE IF NOT EXISTS access_log
(
    entry_id     String,
    at           DateTime64(6, 'UTC'),
    actor        String,
    role         LowCardinality(String),
    route        String,
    record_kind  LowCardinality(String),
    record_id    String,
    reason       Nullable(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, entry_id)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;
