-- The streaming auditor's open proposals, one row each (`Auditor::open_proposal`, JSON), out of
-- the pin's `auditor` state: a sync writes again only those its new events touched, not every
-- open proposal (each holds its roll and report, several KiB).

CREATE TABLE open_proposals (
    proposal_id TEXT PRIMARY KEY NOT NULL,
    state       BLOB NOT NULL
) STRICT;
