-- The scheduler's slow sweep forgets update ids by age, a batch at a time.
CREATE INDEX processed_updates_handled ON processed_updates(handled_at);
