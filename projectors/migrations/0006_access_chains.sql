-- One hash chain per writer. Several API replicas on one ClickHouse server each hold their own
-- lock, so a single chain would fork when two of them chained after the same head at once.
-- Each server-side writer (one process) now keeps its own chain, named in `chain`, numbered
-- from seq 1 and hashed with its name; `safetrail audit verify` checks every chain. The
-- embedded engine has one process per data directory and keeps writing the unnamed chain ''
-- that every entry written before this migration belongs to (their hashes are unchanged).
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS chain String DEFAULT '';
