"""Tasks as Django's documentation writes them (docs/topics/tasks), plus a few for tests."""

import asyncio
import time

from django.core.mail import send_mail
from django.tasks import task

from testproject.models import Thing


class CardDeclined(Exception):
    pass


@task
def calculate_meaning_of_life() -> int:
    return 42


@task(queue_name="emails")
def email_users(emails: list[str], subject: str, content: str) -> int:
    return send_mail(subject=subject, message=content, from_email=None, recipient_list=emails)


@task(takes_context=True)
def email_users_with_context(context, emails, subject, content):  # type: ignore[no-untyped-def]
    return {
        "attempt": context.attempt,
        "result_id": context.task_result.id,
        "sent": send_mail(subject=subject, message=content, from_email=None, recipient_list=emails),
    }


@task(takes_context=True)
def charge(context, amount):  # type: ignore[no-untyped-def]
    """Declined on the first attempt, charged on the next."""
    if context.attempt == 1:
        raise CardDeclined(f"card declined for {amount}")
    return {
        "charged": amount,
        "attempt": context.attempt,
        "workers": context.task_result.worker_ids,
    }


@task
def always_declined(amount: int) -> None:
    raise CardDeclined(f"card declined for {amount}")


@task
def label(text: str) -> str:
    return text


@task
async def add_async(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@task
def thing_name(thing_id: int) -> str:
    return Thing.objects.get(pk=thing_id).name


@task
def clock_in(name: str) -> list[object]:
    """When it ran, by the worker's clock (the order of runs, for priority tests)."""
    return [name, time.time_ns()]


@task(takes_context=True)
async def attempt_async(context):  # type: ignore[no-untyped-def]
    await asyncio.sleep(0)
    return {"attempt": context.attempt, "result_id": context.task_result.id}
