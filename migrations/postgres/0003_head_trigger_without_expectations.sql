-- The insert trigger of 0002 without the `rollbook.expect_*` check (SQLSTATE RBV01).
--
-- Why: that check served a write path, since removed, that inserted on a head handed on before
-- its commit and so could not trust its statement's snapshot for the other stream's version.
-- Every insert now runs on a head that is committed (a statement whose snapshot starts after
-- it) or locked, where the version checks in the statement are exact. 0002 stays as applied
-- (sqlx checksums every applied migration); this replaces the function in place, and the
-- trigger, which names the function, keeps working across the replacement.

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
    UPDATE ledgers
    SET head_seq = NEW.seq, head_hash = NEW.hash, head_recorded_at = NEW.recorded_at
    WHERE ledger_id = NEW.ledger_id;
    RETURN NEW;
END;
$$;
