-- Every statement that inserts events tells listeners (`rollbook watch`) that the ledger moved:
-- one notification per statement and ledger on channel rollbook_events, payload
-- "LEDGER_ID:LAST_SEQ". A hint only: watch reads the new events back through the client's pin
-- and verifies them before it reports anything, and polls as well, so a lost or forged
-- notification changes nothing but when it looks. Statement-level, so a bulk import of a
-- million events queues one notification, not a million.
CREATE FUNCTION rollbook_notify_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved RECORD;
BEGIN
    FOR moved IN SELECT ledger_id, max(seq) AS seq FROM inserted GROUP BY ledger_id LOOP
        PERFORM pg_notify('rollbook_events', moved.ledger_id || ':' || moved.seq);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify_append AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION rollbook_notify_append();
