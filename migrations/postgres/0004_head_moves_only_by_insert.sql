-- The head row is protected like the events: it moves only with an event insert that extends
-- it.
--
-- Why (issue 19, case 1): the head row had no guard, so `UPDATE ledgers SET head_seq = 3 ...`
-- lowered it, after which events could be inserted "on" an old head. An UPSERT into events is an
-- UPDATE (refused by 0001's trigger); an UPSERT into ledgers is an UPDATE too, refused below.
--
-- The head moves in 0003's BEFORE INSERT trigger on events (`rollbook_extend_head`), which
-- checks the event against the locked head first. An UPDATE of `ledgers` fired from inside that
-- trigger runs the guard below at trigger depth 2; a direct UPDATE (or an UPSERT) runs it at
-- depth 1 and is refused. Keeping the move in the BEFORE trigger keeps the one-statement append
-- as it was (moving it to an AFTER trigger cost PostgreSQL appends three quarters of their rate).

-- The only head move allowed is rollbook_extend_head's: one step forward, from inside the event
-- insert trigger; the row's identity never changes.
CREATE FUNCTION rollbook_guard_head() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF pg_trigger_depth() < 2
        OR NEW.ledger_id IS DISTINCT FROM OLD.ledger_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.head_seq IS DISTINCT FROM OLD.head_seq + 1 THEN
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
