-- Indexes for the reads every API request makes.
--
-- Every access-log write first reads the chain head (the entry with the highest seq). The log is
-- sorted by time, not by seq, so that read scanned the seq column of every part. A minmax index
-- on seq lets it skip every part whose entries are all below the head the writer last saw
-- (`Store.log_access` asks for `seq >= <that head>`), so the read no longer grows with the log.
ALTER TABLE access_log ADD INDEX IF NOT EXISTS seq_minmax seq TYPE minmax GRANULARITY 1;
ALTER TABLE access_log MATERIALIZE INDEX seq_minmax;

-- A job's index rows were found through a bloom filter over blocks of 32k rows, which still
-- read hundreds of thousands of job_id values per job; a projection sorted by job_id reads one
-- granule. Like the timeline's projections it is rebuilt when ReplacingMergeTree folds rows.
ALTER TABLE trace_index MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';
ALTER TABLE trace_index ADD PROJECTION IF NOT EXISTS by_job (SELECT * ORDER BY job_id, occurred_at, event_id);
ALTER TABLE trace_index MATERIALIZE PROJECTION by_job;
