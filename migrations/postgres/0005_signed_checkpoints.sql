-- Signed checkpoints (issue 21): the ledger's tree head as a C2SP signed note, kept beside the
-- chain and protected like the events. Not chained events: an event could never be covered by a
-- checkpoint of a tree that contains it.
--
-- A checkpoint row holds the note as its log signer signed it (body, blank line, signature
-- lines); signature lines added later (another signer's, a witness's cosignature) are rows of
-- their own in checkpoint_signatures. Both tables are append-only: UPDATE, DELETE and TRUNCATE
-- are refused (an UPSERT's update is an UPDATE, refused too).

CREATE TABLE checkpoints (
    ledger_id   TEXT    NOT NULL REFERENCES ledgers (ledger_id),
    tree_size   BIGINT  NOT NULL CHECK (tree_size >= 1),
    root        BYTEA   NOT NULL CHECK (octet_length(root) = 32),
    note        TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (ledger_id, tree_size)
);

CREATE TABLE checkpoint_signatures (
    ledger_id   TEXT    NOT NULL,
    tree_size   BIGINT  NOT NULL,
    -- One signature line of the note, without its newline.
    line        TEXT    NOT NULL,
    -- The witness submission URL a cosignature came from; NULL for a log signer's signature.
    source      TEXT,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (ledger_id, tree_size, line),
    FOREIGN KEY (ledger_id, tree_size) REFERENCES checkpoints (ledger_id, tree_size)
);

CREATE INDEX checkpoint_signatures_by_source ON checkpoint_signatures (ledger_id, source, tree_size);

CREATE FUNCTION rollbook_refuse_checkpoint_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rollbook: the % table is append-only; % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER checkpoints_refuse_update BEFORE UPDATE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_checkpoint_rewrite();
CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_checkpoint_rewrite();
CREATE TRIGGER checkpoints_refuse_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION rollbook_refuse_checkpoint_rewrite();
CREATE TRIGGER checkpoint_signatures_refuse_update BEFORE UPDATE ON checkpoint_signatures
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_checkpoint_rewrite();
CREATE TRIGGER checkpoint_signatures_refuse_delete BEFORE DELETE ON checkpoint_signatures
    FOR EACH ROW EXECUTE FUNCTION rollbook_refuse_checkpoint_rewrite();
CREATE TRIGGER checkpoint_signatures_refuse_truncate BEFORE TRUNCATE ON checkpoint_signatures
    FOR EACH STATEMENT EXECUTE FUNCTION rollbook_refuse_checkpoint_rewrite();

-- A checkpoint is of a tree the ledger holds: at most its head. SET search_path FROM CURRENT:
-- the function reads the ledgers table of the schema it was created in.
CREATE FUNCTION rollbook_checkpoint_within_head() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM ledgers WHERE ledger_id = NEW.ledger_id AND head_seq >= NEW.tree_size
    ) THEN
        RAISE EXCEPTION 'rollbook: a checkpoint must be of a tree size the ledger holds (at most its head)'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER checkpoints_within_head BEFORE INSERT ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION rollbook_checkpoint_within_head();
