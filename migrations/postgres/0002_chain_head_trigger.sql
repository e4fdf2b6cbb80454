-- The chain head moves with the event insert, inside PostgreSQL, and nothing that does not
-- extend the head can be inserted.
--
-- Why: with the head moved by the insert itself, one statement can record an event and move
-- the head atomically, so the common append runs as one autocommit statement after an unlocked
-- read of the head (two round trips instead of five; BENCHMARKS.md, append). The head row is
-- still the ledger's lock: the trigger takes it, waits for a concurrent writer, and compares the
-- head that writer committed, so of two writers that sealed their events on the same head
-- exactly one extends it and the other gets SQLSTATE RBH01 (and retries under the lock).
-- It also makes the database itself refuse an event whose seq or prev_hash does not follow the
-- head, or whose time is before the head's (canonical timestamps have one width, so byte order
-- is time order): even a bug in rollbook cannot fork or gap the chain, or turn its clock back,
-- through this database.

-- SET search_path FROM CURRENT: the function reads the ledgers table of the schema it was
-- created in, whatever the search_path of the session that inserts.
CREATE FUNCTION rollbook_extend_head() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    head_seq_now  BIGINT;
    head_hash_now BYTEA;
    head_time_now TEXT;
    other_stream  TEXT;
    other_version BIGINT;
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
    -- A writer may ask, for its transaction, that another stream be at a version when its
    -- event goes in (rollbook.expect_stream, rollbook.expect_version). Checked here, under the
    -- head lock and by a query with a fresh snapshot, because the inserting statement's own
    -- snapshot can predate a commit this lock waited for.
    other_stream := current_setting('rollbook.expect_stream', true);
    IF other_stream IS NOT NULL AND other_stream <> '' THEN
        SELECT COALESCE(MAX(stream_version), 0) INTO other_version
        FROM events WHERE ledger_id = NEW.ledger_id AND stream_id = other_stream;
        IF other_version <> current_setting('rollbook.expect_version')::BIGINT THEN
            RAISE EXCEPTION 'rollbook: stream % is at version %, not the expected %',
                other_stream, other_version, current_setting('rollbook.expect_version')
                USING ERRCODE = 'RBV01';
        END IF;
    END IF;
    UPDATE ledgers
    SET head_seq = NEW.seq, head_hash = NEW.hash, head_recorded_at = NEW.recorded_at
    WHERE ledger_id = NEW.ledger_id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_extend_head BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION rollbook_extend_head();

-- Raised by a one-statement append whose projection UPDATE found no row in its snapshot (a
-- concurrent `rebuild` replaced the rows while the statement waited for the head lock): the
-- whole statement fails, nothing is recorded, and rollbook redoes the append under the lock.
CREATE FUNCTION rollbook_projection_missed() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rollbook: the projection row changed under this append; retried under the lock'
        USING ERRCODE = 'RBP01';
END;
$$;
