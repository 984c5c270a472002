"""The named queries of workflows (``sqlite/workflows.sql``, ``postgres/workflows.sql``)."""

from __future__ import annotations

from dataclasses import dataclass

from liteq.sql import load_named, read_sql


@dataclass(frozen=True, slots=True)
class WorkflowQueries:
    """One field per ``-- name:`` block of ``<dialect>/workflows.sql`` (same names on both)."""

    insert_workflow: str
    set_output: str
    insert_step: str
    insert_dep: str
    settle_edges: str
    count_down: str
    outcomes_of: str
    release_step: str
    cancel_waiting: str
    ended_job: str
    get_workflow: str
    workflow_jobs: str
    job_workflow: str
    job_parents: str
    job_children: str


def load_workflow_queries(dialect: str, schema: str | None = None) -> WorkflowQueries:
    """The workflow queries of ``dialect`` ("sqlite" or "postgres", tables in ``schema``)."""
    text = read_sql(dialect, "workflows.sql")
    if dialect == "postgres":
        from liteq.sql.postgres import qualify  # noqa: PLC0415 - only PostgreSQL needs it

        return load_named(
            WorkflowQueries, text, "postgres/workflows.sql", lambda sql: qualify(sql, schema)
        )
    return load_named(WorkflowQueries, text, "sqlite/workflows.sql")
