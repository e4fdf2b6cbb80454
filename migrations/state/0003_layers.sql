-- The closed layers the streaming auditor folded (`Auditor::take_touched_layers`, JSON), one row
-- each, out of the pin's `auditor` state: a ledger keeps every layer it ever drew on, and a sync
-- writes again only those its new events changed and reads only those they need (by id, or by
-- the layer's numbers: one layer, one set of numbers). A state saved before this table existed
-- holds no layers: its `auditor` state does not read back, and the client says to start over.

CREATE TABLE layers (
    layer_id    TEXT PRIMARY KEY NOT NULL,
    numbers_key TEXT NOT NULL UNIQUE,
    state       BLOB NOT NULL
) STRICT;
