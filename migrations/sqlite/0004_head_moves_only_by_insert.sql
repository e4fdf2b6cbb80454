-- The head row is protected like the events: it moves only with an event insert that extends
-- it, and no insert can replace a row.
--
-- Why (issue 19, case 1): the head row had no guard, so `UPDATE ledgers SET head_seq = 3 ...`
-- lowered it, and `INSERT OR REPLACE INTO events` of later events then went in "on the head":
-- REPLACE deletes the conflicting rows without firing DELETE triggers (unless the connection
-- enables recursive_triggers, which an attacker does not), so history was rewritten without
-- dropping a trigger. The checks below are on the insert and update side, where REPLACE cannot
-- skip them.

-- The only head move allowed is events_move_head's (0002/0003): one step forward, onto the
-- event just inserted, with that event's hash and time; the row's identity never changes.
CREATE TRIGGER ledgers_head_moves_only_by_insert BEFORE UPDATE ON ledgers
WHEN NEW.ledger_id IS NOT OLD.ledger_id
  OR NEW.created_at IS NOT OLD.created_at
  OR NEW.head_seq IS NOT OLD.head_seq + 1
  OR NOT EXISTS (
      SELECT 1 FROM events
      WHERE seq = NEW.head_seq
        AND ledger_id = NEW.ledger_id
        AND hash = NEW.head_hash
        AND recorded_at = NEW.head_recorded_at
  )
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the ledger head moves only with an event insert that extends it; UPDATE refused');
END;

CREATE TRIGGER ledgers_refuse_delete BEFORE DELETE ON ledgers
BEGIN
    SELECT RAISE(ABORT, 'rollbook: a ledger''s head row cannot be deleted; DELETE refused');
END;

-- A ledger starts empty (head_seq 0, before its genesis event); a row for a ledger that has
-- events could only be an INSERT OR REPLACE of its head (the REPLACE deletes the old row).
CREATE TRIGGER ledgers_insert_only_empty BEFORE INSERT ON ledgers
WHEN NEW.head_seq IS NOT 0
  OR EXISTS (SELECT 1 FROM events WHERE ledger_id = NEW.ledger_id)
BEGIN
    SELECT RAISE(ABORT, 'rollbook: a ledger row starts at head 0 and cannot replace a ledger with events; INSERT refused');
END;

-- An event that collides with a stored one on its event id or stream version, or on its seq
-- with another ledger's event (seq is the rowid, shared by every ledger in the file), is
-- refused before a REPLACE could delete the stored row. A collision on seq within the ledger
-- is refused by events_extend_head_only already: with the head guarded above, every stored
-- event of a ledger lies at or below its head.
CREATE TRIGGER events_replace_nothing BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq AND ledger_id IS NOT NEW.ledger_id)
  OR EXISTS (SELECT 1 FROM events WHERE event_id = NEW.event_id)
  OR EXISTS (
      SELECT 1 FROM events
      WHERE ledger_id = NEW.ledger_id
        AND stream_id = NEW.stream_id
        AND stream_version = NEW.stream_version
  )
BEGIN
    SELECT RAISE(ABORT, 'rollbook: an event cannot replace a stored one (same event id, stream version or seq); INSERT refused');
END;
