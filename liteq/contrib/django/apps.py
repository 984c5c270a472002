"""The Django app that brings ``manage.py liteq_worker``."""

from __future__ import annotations

from django.apps import AppConfig


class LiteqConfig(AppConfig):
    name = "liteq.contrib.django"
    label = "liteq"
    verbose_name = "liteq"
