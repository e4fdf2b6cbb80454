-- `list` shows the newest proposals first and reads only those it shows (issue 23): this index
-- walks the projection from the newest recording back, so `list --limit 20` reads 20 rows
-- however many proposals the ledger holds. (`proposals_by_status` serves `--status`.)

CREATE INDEX proposals_newest ON proposals (ledger_id, first_seq);
