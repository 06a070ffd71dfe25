-- Tamper evidence for the access log: every entry carries its position in the chain (seq),
-- the hash of the entry before it (prev_hash) and its own hash over a canonical serialisation
-- of the entry including prev_hash (see projectors/audit_chain.py). `details` holds what a
-- replay or re-drive did (range, filters, rules versions, counts) as canonical JSON.
-- Entries written before this migration keep seq 0 and empty hashes: `safetrail audit verify`
-- reports them as not covered by the chain.
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS seq UInt64 DEFAULT 0;
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS details String DEFAULT '';
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS prev_hash String DEFAULT '';
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS hash String DEFAULT '';

-- Dead letters that a re-drive turned into timeline events. Kept apart from `dead_letters` so
-- the original reason and bytes stay as received; the list shows a dead letter as re-driven
-- when a row here names it. Same short retention as the dead letters themselves.
CREATE TABLE IF NOT EXISTS dead_letter_redrives
(
    dead_letter_id  String,
    redriven_at     DateTime64(6, 'UTC'),
    replay_id       String,
    event_id        String
)
ENGINE = ReplacingMergeTree(redriven_at)
ORDER BY dead_letter_id
TTL toDateTime(redriven_at) + INTERVAL ${raw_retention_days} DAY;
