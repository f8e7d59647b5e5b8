-- 005: the entry status 'skipped' was declared but never written; drop it.
-- (Any row that somehow has it is failed with a note rather than lost.)

UPDATE news.entries SET status = 'failed', last_error = coalesce(last_error, 'status skipped retired')
WHERE status = 'skipped';
ALTER TABLE news.entries DROP CONSTRAINT entries_status_check;
ALTER TABLE news.entries ADD CONSTRAINT entries_status_check CHECK (status IN ('pending', 'loaded', 'failed'));
