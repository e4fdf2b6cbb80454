-- The chain head moves with the event insert, inside PostgreSQL, and nothing that does not
-- extend the head can be inserted.
--
-- Why: with the head moved by the insert itself, one statement can record an event and move
-- the head atomically, so the common append runs as one autocommit statement after an unlocked
-- read of the head (two round trips instead of five; BENCHMARKS.md, append). The head row is
-- still the ledger's lock: the UPDATE below takes it, waits for a concurrent writer, and, under
-- READ COMMITTED, re-checks its condition against the row that writer committed, so of two
-- writers that read the same head exactly one extends it and the other gets SQLSTATE RBH01.
-- It also makes the database itself refuse an event whose seq or prev_hash does not follow the
-- head: even a bug in rollbook cannot fork or gap the chain through this database.

CREATE FUNCTION rollbook_extend_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledgers
    SET head_seq = NEW.seq, head_hash = NEW.hash, head_recorded_at = NEW.recorded_at
    WHERE ledger_id = NEW.ledger_id
      AND head_seq + 1 = NEW.seq
      AND head_hash = NEW.prev_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rollbook: an event must extend its ledger head (seq = head_seq + 1, prev_hash = head_hash)'
            USING ERRCODE = 'RBH01';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_extend_head BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION rollbook_extend_head();
