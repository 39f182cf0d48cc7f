-- A statement of a no-transaction file that PostgreSQL refuses inside a
-- transaction (CREATE INDEX CONCURRENTLY, VACUUM ...) cannot commit together
-- with its progress row, so it is marked here (1-based) before it starts and
-- cleared when it has ended. A run killed meanwhile leaves the mark: the next
-- run checks that statement (an index that exists and is valid) instead of
-- running it twice blindly, or stops and says how to go on.
ALTER TABLE flotilla.execution ADD COLUMN in_flight integer;

-- A run whose process died (kill -9, lost connection) never finishes its row;
-- the next run of the same service, holding the lock, marks it abandoned.
ALTER TABLE flotilla.run DROP CONSTRAINT run_outcome_check;
ALTER TABLE flotilla.run ADD CONSTRAINT run_outcome_check
    CHECK (outcome IN ('success', 'failed', 'interrupted', 'abandoned'));
