-- liteq schema version 5: flow control. One row per queue an operator set something on
-- (liteq queue DB pause|resume NAME); a queue with no row is not paused. The claim reads
-- it in its own transaction, so a pause holds across every worker at the next claim.
CREATE TABLE queue_settings (
    name       TEXT    NOT NULL PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at REAL    NOT NULL
) WITHOUT ROWID;
