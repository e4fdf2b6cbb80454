-- A client's verified state of one ledger (one file per ledger id, in the state directory):
-- the pin (the last head this client verified, with the auditor's state there), the hash of
-- every event it verified, and the projection those events make. Written only after the
-- events verified; rebuilt from genesis when the file is missing.

CREATE TABLE pin (
    ledger_id       TEXT    PRIMARY KEY NOT NULL,
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    head_hash       BLOB    NOT NULL CHECK (length(head_hash) = 32),
    -- The streaming auditor's state after `seq` (JSON): what checking the next event needs.
    auditor         BLOB    NOT NULL,
    -- Events pushed through the auditor by every sync so far, and the syncs that pushed any:
    -- observations (tests check that a sync costs the new events, not the ledger).
    events_verified INTEGER NOT NULL,
    syncs           INTEGER NOT NULL,
    updated_at      TEXT    NOT NULL
) STRICT;

-- A pin only moves forward: two clients syncing at once cannot move it back.
CREATE TRIGGER pin_moves_forward BEFORE UPDATE ON pin
WHEN NEW.seq < OLD.seq OR NEW.ledger_id <> OLD.ledger_id
BEGIN
    SELECT RAISE(ABORT, 'rollbook: a pin only moves forward');
END;

-- The hash of every verified event: where a rewritten history diverges, and whether an event
-- read from the database later is the one verified.
CREATE TABLE chain (
    seq  INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    hash BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- Each verified stream's last version and the seq of that version.
CREATE TABLE streams (
    stream_id TEXT    PRIMARY KEY NOT NULL,
    version   INTEGER NOT NULL CHECK (version >= 1),
    last_seq  INTEGER NOT NULL CHECK (last_seq >= 1)
) STRICT;

-- The projection of the verified events: the ledger's `proposals` table, made by the same
-- statements from the same events, so a row the database holds can be compared column by column.
CREATE TABLE proposals (
    ledger_id           TEXT    NOT NULL,
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
