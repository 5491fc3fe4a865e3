-- Counting an account's live instances (every RunInstances does) must not scan
-- the wide rows: a covering index keeps it proportional to an index range.
-- A reservation's instances are read in id order: with `id` in the index the
-- planner no longer prefers walking the whole account in primary-key order.
CREATE INDEX instances_account_state ON instances(account_id, state);
DROP INDEX instances_reservation;
CREATE INDEX instances_reservation ON instances(account_id, reservation_id, id);
