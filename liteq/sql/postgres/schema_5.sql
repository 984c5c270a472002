-- liteq schema version 5 on PostgreSQL: rate and concurrency limits; the same tables as
-- SQLite's schema_6.sql (docs/flow-control.md). A claim under limits locks the rows of
-- flow_limits (FOR UPDATE, in name order), so limited claims take turns: exact across
-- every worker.
CREATE TABLE flow_limits (
    scope       text             NOT NULL CHECK (scope IN ('task', 'queue')),
    name        text             NOT NULL,
    rate_count  integer,
    rate_period double precision,
    concurrency integer,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (scope, name),
    CHECK ((rate_count IS NULL) = (rate_period IS NULL))
);
CREATE TABLE flow_starts (
    scope      text             NOT NULL,
    name       text             NOT NULL,
    started_at double precision NOT NULL,
    count      integer          NOT NULL
);
CREATE INDEX flow_starts_window ON flow_starts (scope, name, started_at);
