-- How many closed layers and committed rolls the file holds (kept by triggers) and how many the
-- last sync left (in the pin row). A layer or roll looked up and not found is usually one the
-- ledger never had; when the two counts differ, a row went missing instead (removed by hand, or
-- a damaged file), and the client says its state file is damaged rather than draft a roll on a
-- budget it no longer sees (which every other client would refuse) or call a valid ledger
-- invalid. A pin saved before this migration has no counts: nothing is compared until its next
-- sync saves them.

CREATE TABLE saved_rows (
    kind TEXT PRIMARY KEY NOT NULL CHECK (kind IN ('layers', 'committed_rolls')),
    n    INTEGER NOT NULL
) STRICT;

INSERT INTO saved_rows (kind, n) SELECT 'layers', count(*) FROM layers;
INSERT INTO saved_rows (kind, n) SELECT 'committed_rolls', count(*) FROM committed_rolls;

CREATE TRIGGER layers_counted_in AFTER INSERT ON layers
BEGIN
    UPDATE saved_rows SET n = n + 1 WHERE kind = 'layers';
END;

CREATE TRIGGER layers_counted_out AFTER DELETE ON layers
BEGIN
    UPDATE saved_rows SET n = n - 1 WHERE kind = 'layers';
END;

CREATE TRIGGER committed_rolls_counted_in AFTER INSERT ON committed_rolls
BEGIN
    UPDATE saved_rows SET n = n + 1 WHERE kind = 'committed_rolls';
END;

CREATE TRIGGER committed_rolls_counted_out AFTER DELETE ON committed_rolls
BEGIN
    UPDATE saved_rows SET n = n - 1 WHERE kind = 'committed_rolls';
END;

ALTER TABLE pin ADD COLUMN layers_saved INTEGER;
ALTER TABLE pin ADD COLUMN rolls_saved INTEGER;
