-- The events table keyed by seq alone: seq becomes the table's rowid.
--
-- Why: a database holds one ledger (creation is exclusive: store/backend.rs), so seq is unique on
-- its own, and the separate (ledger_id, seq) index that the old primary key kept duplicated the
-- table's order at the cost of one more page written to the WAL on every append (BENCHMARKS.md,
-- append: an append's cost over the raw insert is its pages, not its fsync). The rowid table is
-- stored in seq order, so reading the chain in order walks the table itself.
--
-- Every guarantee stays: seq is unique (the rowid), each stream version once (the unique index),
-- each event id once (the unique index), updates and deletes refused, and an insert accepted
-- only when it extends the head (the triggers of 0002, recreated below with the table). A NULL
-- seq, which a rowid would otherwise fill in, does not extend the head and is refused.

CREATE TABLE events_by_seq (
    ledger_id       TEXT    NOT NULL REFERENCES ledgers (ledger_id),
    seq             INTEGER PRIMARY KEY CHECK (seq >= 1),
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    recorded_at     TEXT    NOT NULL,
    actor           TEXT,
    payload         BLOB    NOT NULL,
    prev_hash       BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash            BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (ledger_id, stream_id, stream_version)
) STRICT;

INSERT INTO events_by_seq (
    ledger_id, seq, stream_id, stream_version, event_id, event_type, schema_version,
    recorded_at, actor, payload, prev_hash, hash
)
SELECT ledger_id, seq, stream_id, stream_version, event_id, event_type, schema_version,
       recorded_at, actor, payload, prev_hash, hash
FROM events ORDER BY seq;

-- Dropping the table drops its triggers; no row trigger fires for a DROP.
DROP TABLE events;
ALTER TABLE events_by_seq RENAME TO events;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the events table is append-only; UPDATE refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the events table is append-only; DELETE refused');
END;

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
