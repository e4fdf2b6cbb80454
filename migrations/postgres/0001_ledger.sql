-- rollbook ledger schema (PostgreSQL). Events are append-only: the triggers below refuse every
-- UPDATE, DELETE and TRUNCATE, so even a bug in rollbook cannot rewrite history through this
-- database.

-- One row per ledger: its head. Appends lock this row (SELECT ... FOR UPDATE), which orders all
-- writers of one ledger and gives each the latest head in O(1).
CREATE TABLE ledgers (
    ledger_id   TEXT    PRIMARY KEY NOT NULL,
    head_seq    BIGINT  NOT NULL CHECK (head_seq >= 0),
    head_hash   BYTEA   NOT NULL CHECK (octet_length(head_hash) = 32),
    head_recorded_at TEXT NOT NULL,
    created_at  TEXT    NOT NULL
);

CREATE TABLE events (
    ledger_id       TEXT    NOT NULL REFERENCES ledgers (ledger_id),
    seq             BIGINT  NOT NULL CHECK (seq >= 1),
    stream_id       TEXT    NOT NULL,
    stream_version  BIGINT  NOT NULL CHECK (stream_version >= 1),
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    recorded_at     TEXT    NOT NULL,
    actor           TEXT,
    payload         BYTEA   NOT NULL,
    prev_hash       BYTEA   NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash            BYTEA   NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (ledger_id, seq),
    UNIQUE (ledger_id, stream_id, stream_version)
);

CREATE FUNCTION rollbook_refuse_event_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rollbook: the events table is append-only; % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_event_rewrite();
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_event_rewrite();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION rollbook_refuse_event_rewrite();

-- Projection: one row per proposal or governance motion, updated in the same transaction as
-- the events it derives from; `rollbook rebuild` recomputes it from the events alone.
CREATE TABLE proposals (
    ledger_id           TEXT    NOT NULL REFERENCES ledgers (ledger_id),
    proposal_id         TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    verdict             TEXT,
    proposer            TEXT    NOT NULL,
    contracts_requested BIGINT,
    created_at          TEXT    NOT NULL,
    expires_at          TEXT    NOT NULL,
    signer_set_version  BIGINT  NOT NULL,
    policy_version      BIGINT  NOT NULL,
    signature_count     BIGINT  NOT NULL,
    signers             TEXT    NOT NULL,
    first_seq           BIGINT  NOT NULL,
    last_seq            BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, proposal_id)
);

CREATE INDEX proposals_by_status ON proposals (ledger_id, status, first_seq);
