-- The head row is protected like the events: it moves only with an event insert that extends
-- it.
--
-- Why (issue 19, case 1): the head row had no guard, so `UPDATE ledgers SET head_seq = 3 ...`
-- lowered it, after which events could be inserted "on" an old head. An UPSERT into events is an
-- UPDATE (refused by 0001's trigger); an UPSERT into ledgers is an UPDATE too, refused below.
--
-- To check a move against the event it moves to, the move must come after that event's row
-- exists: 0003's BEFORE INSERT trigger keeps the lock and the checks (SQLSTATE RBH01), and the
-- move goes to an AFTER INSERT trigger. The head row stays locked from the BEFORE trigger on,
-- so no writer can slip between the check and the move. A multi-row INSERT now fails its second
-- row (the head moves at the end of the statement); rollbook inserts one row per statement.

CREATE OR REPLACE FUNCTION rollbook_extend_head() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    head_seq_now  BIGINT;
    head_hash_now BYTEA;
    head_time_now TEXT;
BEGIN
    -- Lock first, compare after: a locking read waits for a writer that holds the row and then
    -- returns the head it committed, where an UPDATE ... WHERE head_seq = ... would judge the
    -- row by the statement's older snapshot and skip it without waiting.
    SELECT head_seq, head_hash, head_recorded_at INTO head_seq_now, head_hash_now, head_time_now
    FROM ledgers WHERE ledger_id = NEW.ledger_id FOR UPDATE;
    IF NOT FOUND OR head_seq_now + 1 <> NEW.seq OR head_hash_now <> NEW.prev_hash
        OR NEW.recorded_at COLLATE "C" < head_time_now COLLATE "C" THEN
        RAISE EXCEPTION 'rollbook: an event must extend its ledger head (seq = head_seq + 1, prev_hash = head_hash, recorded_at not before the head''s)'
            USING ERRCODE = 'RBH01';
    END IF;
    RETURN NEW;
END;
$$;

CREATE FUNCTION rollbook_move_head() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE ledgers
    SET head_seq = NEW.seq, head_hash = NEW.hash, head_recorded_at = NEW.recorded_at
    WHERE ledger_id = NEW.ledger_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_move_head AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION rollbook_move_head();

-- The only head move allowed is rollbook_move_head's: one step forward, onto the event just
-- inserted, with that event's hash and time; the row's identity never changes.
CREATE FUNCTION rollbook_guard_head() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.ledger_id IS DISTINCT FROM OLD.ledger_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.head_seq IS DISTINCT FROM OLD.head_seq + 1
        OR NOT EXISTS (
            SELECT 1 FROM events
            WHERE ledger_id = NEW.ledger_id
              AND seq = NEW.head_seq
              AND hash = NEW.head_hash
              AND recorded_at = NEW.head_recorded_at
        ) THEN
        RAISE EXCEPTION 'rollbook: the ledger head moves only with an event insert that extends it; UPDATE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE FUNCTION rollbook_refuse_ledger_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rollbook: a ledger''s head row cannot be deleted; % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledgers_head_moves_only_by_insert BEFORE UPDATE ON ledgers
    FOR EACH ROW EXECUTE FUNCTION rollbook_guard_head();
CREATE TRIGGER ledgers_refuse_delete BEFORE DELETE ON ledgers
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_ledger_removal();
CREATE TRIGGER ledgers_refuse_truncate BEFORE TRUNCATE ON ledgers
    FOR EACH STATEMENT EXECUTE FUNCTION rollbook_refuse_ledger_removal();
