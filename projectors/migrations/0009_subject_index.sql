-- Support searches by every stable ID a service sends, not only trace, job and customer IDs:
-- an order, a workspace or a request ID pasted from a ticket or another tool finds the traces
-- that named it. Each event naming one adds a row (kind, id) -> trace here, sorted by that ID,
-- so a search reads one granule instead of scanning the timeline's ID columns. Rows fold per
-- (kind, id, trace) to the newest, and leave with the timeline's retention.
CREATE TABLE IF NOT EXISTS subject_index
(
    kind         LowCardinality(String),
    id           String,
    trace_id     String,
    customer_id  String,
    occurred_at  DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(occurred_at)
ORDER BY (kind, id, trace_id)
TTL toDateTime(occurred_at) + INTERVAL ${retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS subject_index_mv TO subject_index AS
SELECT subject.1 AS kind, subject.2 AS id, trace_id, customer_id, occurred_at
FROM timeline_events
ARRAY JOIN [('order', order_id), ('workspace', workspace_id), ('request', request_id)] AS subject
WHERE subject.2 != '';

-- Events stored before this migration (online: writes go on; an event inserted while this runs
-- may be indexed twice, which the table folds).
INSERT INTO subject_index
SELECT subject.1 AS kind, subject.2 AS id, trace_id, customer_id, occurred_at
FROM timeline_events
ARRAY JOIN [('order', order_id), ('workspace', workspace_id), ('request', request_id)] AS subject
WHERE subject.2 != '';
