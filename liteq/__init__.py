"""liteq: an embedded task queue in one SQLite file. No broker; at-least-once delivery."""

from liteq._version import __version__
from liteq.attempts import Attempt
from liteq.clock import Clock, FakeClock, SystemClock
from liteq.context import JobContext, current_job
from liteq.errors import (
    ConfigError,
    DatabaseBusy,
    DatabaseError,
    DatabaseFull,
    JobFailed,
    JobNotFound,
    LiteqError,
    NotALiteqDatabase,
    Retry,
    SchemaTooNew,
    SerializationError,
    TaskNotFound,
    WorkerLost,
)
from liteq.hooks import StartInfo, SuccessInfo
from liteq.job import Job
from liteq.models import DeadJob, JobRecord, JobState
from liteq.observe import WorkerInfo
from liteq.options import FailureInfo
from liteq.queue import Queue
from liteq.tasks import Task, TaskCall

__all__ = [
    "Attempt",
    "Clock",
    "ConfigError",
    "DatabaseBusy",
    "DatabaseError",
    "DatabaseFull",
    "DeadJob",
    "FailureInfo",
    "FakeClock",
    "Job",
    "JobContext",
    "JobFailed",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "LiteqError",
    "NotALiteqDatabase",
    "Queue",
    "Retry",
    "SchemaTooNew",
    "SerializationError",
    "StartInfo",
    "SuccessInfo",
    "SystemClock",
    "Task",
    "TaskCall",
    "TaskNotFound",
    "WorkerInfo",
    "WorkerLost",
    "__version__",
    "current_job",
]
