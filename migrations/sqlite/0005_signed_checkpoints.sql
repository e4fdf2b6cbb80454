-- Signed checkpoints (issue 21): the ledger's tree head as a C2SP signed note, kept beside the
-- chain and protected like the events. Not chained events: an event could never be covered by a
-- checkpoint of a tree that contains it.
--
-- A checkpoint row holds the note as its log signer signed it (body, blank line, signature
-- lines); signature lines added later (another signer's, a witness's cosignature) are rows of
-- their own in checkpoint_signatures. Both tables are append-only: no UPDATE, no DELETE, and an
-- insert never replaces a stored row (REPLACE deletes without firing DELETE triggers, so a row
-- that collides is skipped before REPLACE could act; rollbook reads "0 rows" as "already there").

CREATE TABLE checkpoints (
    ledger_id   TEXT    NOT NULL REFERENCES ledgers (ledger_id),
    tree_size   INTEGER NOT NULL CHECK (tree_size >= 1),
    root        BLOB    NOT NULL CHECK (length(root) = 32),
    note        TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (ledger_id, tree_size)
) STRICT;

CREATE TABLE checkpoint_signatures (
    ledger_id   TEXT    NOT NULL,
    tree_size   INTEGER NOT NULL,
    -- One signature line of the note, without its newline.
    line        TEXT    NOT NULL,
    -- The witness submission URL a cosignature came from; NULL for a log signer's signature.
    source      TEXT,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (ledger_id, tree_size, line),
    FOREIGN KEY (ledger_id, tree_size) REFERENCES checkpoints (ledger_id, tree_size)
) STRICT;

CREATE INDEX checkpoint_signatures_by_source ON checkpoint_signatures (ledger_id, source, tree_size);

CREATE TRIGGER checkpoints_refuse_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the checkpoints table is append-only; UPDATE refused');
END;

CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the checkpoints table is append-only; DELETE refused');
END;

-- A checkpoint is of a tree the ledger holds: at most its head.
CREATE TRIGGER checkpoints_within_head BEFORE INSERT ON checkpoints
WHEN NOT EXISTS (
    SELECT 1 FROM ledgers WHERE ledger_id = NEW.ledger_id AND head_seq >= NEW.tree_size
)
BEGIN
    SELECT RAISE(ABORT, 'rollbook: a checkpoint must be of a tree size the ledger holds (at most its head)');
END;

CREATE TRIGGER checkpoints_replace_nothing BEFORE INSERT ON checkpoints
WHEN EXISTS (
    SELECT 1 FROM checkpoints WHERE ledger_id = NEW.ledger_id AND tree_size = NEW.tree_size
)
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER checkpoint_signatures_refuse_update BEFORE UPDATE ON checkpoint_signatures
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the checkpoint_signatures table is append-only; UPDATE refused');
END;

CREATE TRIGGER checkpoint_signatures_refuse_delete BEFORE DELETE ON checkpoint_signatures
BEGIN
    SELECT RAISE(ABORT, 'rollbook: the checkpoint_signatures table is append-only; DELETE refused');
END;

CREATE TRIGGER checkpoint_signatures_replace_nothing BEFORE INSERT ON checkpoint_signatures
WHEN EXISTS (
    SELECT 1 FROM checkpoint_signatures
    WHERE ledger_id = NEW.ledger_id AND tree_size = NEW.tree_size AND line = NEW.line
)
BEGIN
    SELECT RAISE(IGNORE);
END;
