-- Scheduled backups (ops::backup) are jobs of kind 'backup', each run
-- scheduling the next. At most one waits at a time, even when several
-- replicas start together and each asks for one.
CREATE UNIQUE INDEX jobs_one_backup ON jobs(kind) WHERE kind = 'backup' AND done_at IS NULL;
