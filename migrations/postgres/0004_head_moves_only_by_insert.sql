-- The head row is protected like the events: it moves only with an event insert that extends
-- it.
--
-- Why (issue 19, case 1): the head row had no guard, so `UPDATE ledgers SET head_seq = 3 ...`
-- lowered it, after which events could be inserted "on" an old head. An UPSERT into events is an
-- UPDATE (refused by 0001's trigger); an UPSERT into ledgers is an UPDATE too, refused below.
--
-- The head moves in 0003's BEFORE INSERT trigger on events (`rollbook_extend_head`), which
-- checks the event against the locked head first. An UPDATE of `ledgers` issued from inside that
-- trigger is judged at trigger depth 1; a direct UPDATE (or an UPSERT) at depth 0, and is
-- refused. Keeping the move in the BEFORE trigger keeps the one-statement append
-- as it was (moving it to an AFTER trigger cost PostgreSQL appends three quarters of their rate).

-- The only head move allowed is rollbook_extend_head's: one step forward, from inside the event
-- insert trigger; the row's identity never changes. The condition is the trigger's WHEN clause,
-- so an honest append calls no function for it (a PL/pgSQL guard called on every append cost
-- about a quarter of PostgreSQL's append rate).
CREATE FUNCTION rollbook_refuse_head_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rollbook: the ledger head moves only with an event insert that extends it; UPDATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE FUNCTION rollbook_refuse_ledger_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rollbook: a ledger''s head row cannot be deleted; % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledgers_head_moves_only_by_insert BEFORE UPDATE ON ledgers
    FOR EACH ROW
    WHEN (pg_trigger_depth() < 1
        OR NEW.ledger_id IS DISTINCT FROM OLD.ledger_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.head_seq IS DISTINCT FROM OLD.head_seq + 1)
    EXECUTE FUNCTION rollbook_refuse_head_update();
CREATE TRIGGER ledgers_refuse_delete BEFORE DELETE ON ledgers
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_ledger_removal();
CREATE TRIGGER ledgers_refuse_truncate BEFORE TRUNCATE ON ledgers
    FOR EACH STATEMENT EXECUTE FUNCTION rollbook_refuse_ledger_removal();
