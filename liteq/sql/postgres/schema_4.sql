-- liteq schema version 4 on PostgreSQL: flow control; the same table as SQLite's
-- schema_5.sql. One row per queue an operator set something on; no row: not paused.
CREATE TABLE queue_settings (
    name       text             NOT NULL PRIMARY KEY,
    paused     boolean          NOT NULL DEFAULT false,
    updated_at double precision NOT NULL
);
