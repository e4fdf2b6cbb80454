-- The chain head moves with the event insert, inside SQLite, and nothing that does not extend
-- the head can be inserted.
--
-- Why: an append used to run a separate UPDATE of the head after its INSERT. sqlx costs about
-- 65 us per SQLite statement, more than the statement itself, so moving the head in a trigger
-- takes one statement off every append (BENCHMARKS.md, append). The guard makes the database
-- itself refuse an event whose seq or prev_hash does not follow the head, or whose time is
-- before the head's (canonical timestamps have one width, so text order is time order), so even
-- a bug in rollbook cannot fork or gap the chain, or turn its clock back, through this database.

CREATE TRIGGER events_extend_head_only BEFORE INSERT ON events
WHEN NOT EXISTS (
    SELECT 1 FROM ledgers
    WHERE ledger_id = NEW.ledger_id
      AND head_seq + 1 = NEW.seq
      AND head_hash = NEW.prev_hash
      AND head_recorded_at <= NEW.recorded_at
)
BEGIN
    SELECT RAISE(ABORT, 'rollbook: an event must extend its ledger head (seq = head_seq + 1, prev_hash = head_hash, recorded_at not before the head''s)');
END;

CREATE TRIGGER events_move_head AFTER INSERT ON events
BEGIN
    UPDATE ledgers
    SET head_seq = NEW.seq, head_hash = NEW.hash, head_recorded_at = NEW.recorded_at
    WHERE ledger_id = NEW.ledger_id;
END;
