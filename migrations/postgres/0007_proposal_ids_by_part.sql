-- Ids people type (issue 23): a proposal's short id (the last 12 hex digits of its UUID) or a
-- prefix of at least 8 characters, resolved against every proposal the ledger ever recorded
-- (the first event of each stream). A UUIDv7's first 8 hex digits are its time to about a
-- minute, so the prefix index narrows to the proposals of that minute and the caller keeps
-- those with the whole prefix; the short id is the random tail, looked up exactly. No ledger
-- column: a database holds one ledger, and the queries keep SQLite's planner off the
-- (ledger, stream, version) index as `SELECT_PAGE` does (store/queries.rs).

CREATE INDEX events_proposal_id_tail ON events (substr(stream_id, 25)) WHERE stream_version = 1;
CREATE INDEX events_proposal_id_head ON events (substr(stream_id, 1, 8)) WHERE stream_version = 1;
