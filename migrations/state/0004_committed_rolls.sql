-- The committed rolls the streaming auditor keeps to check their executions
-- (`Auditor::take_touched_rolls`, JSON), one row each, out of the pin's `auditor` state: a sync
-- writes again only those its new events changed and reads only those an execution needs. A
-- row outlives its roll's recording deadline; the deadline itself refuses a late execution.

CREATE TABLE committed_rolls (
    proposal_id TEXT PRIMARY KEY NOT NULL,
    state       BLOB NOT NULL
) STRICT;
