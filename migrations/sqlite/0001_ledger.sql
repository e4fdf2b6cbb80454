-- rollbook ledger schema (SQLite). Events are append-only: the triggers below refuse every
-- UPDATE and DELETE, so even a bug in rollbook cannot rewrite history through this database.

-- One row per ledger: its head. Appends read and move it inside one IMMEDIATE transaction, so
-- the head lookup is O(1) and the write lock orders all writers.
CREATE TABLE ledgers (
    ledger_id   TEXT    PRIMARY KEY NOT NULL,
    head_seq    INTEGER NOT NULL CHECK (head_seq >= 0),
    head_hash   BLOB    NOT NULL CHECK (length(head_hash) = 32),
    head_recorded_at TEXT NOT NULL,
    created_at  TEXT    NOT NULL
) STRICT;

CREATE TABLE events (
    ledger_id       TEXT    NOT NULL REFERENCES ledgers (ledger_id),
    seq             INTEGER NOT NULL CHECK (seq >= 1),
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
    PRIMARY KEY (ledger_id, seq),
    UNIQUE (ledger_id, stream_id, stream_version)
) STRICT;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the events table is append-only; UPDATE refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the events table is append-only; DELETE refused');
END;

-- Projection: one row per proposal or governance motion, updated in the same transaction as
-- the events it derives from; `rollbook rebuild` recomputes it from the events alone.
CREATE TABLE proposals (
    ledger_id           TEXT    NOT NULL REFERENCES ledgers (ledger_id),
    proposal_id         TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    verdict             TEXT,
    proposer            TEXT    NOT NULL,
    contracts_requested INTEGER,
    created_at          TEXT    NOT NULL,
    expires_at          TEXT    NOT NULL,
    signer_set_version  INTEGER NOT NULL,
    policy_version      INTEGER NOT NULL,
    signature_count     INTEGER NOT NULL,
    signers             TEXT    NOT NULL,
    first_seq           INTEGER NOT NULL,
    last_seq            INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, proposal_id)
) STRICT;

CREATE INDEX proposals_by_status ON proposals (ledger_id, status, first_seq);
