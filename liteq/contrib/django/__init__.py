"""liteq as a backend of Django's tasks framework (``django.tasks``, Django >= 6.0).

``TASKS = {"default": {"BACKEND": "liteq.contrib.django.LiteqBackend",
"OPTIONS": {"DB": BASE_DIR / "tasks.db"}}}``, ``"liteq.contrib.django"`` in
``INSTALLED_APPS``, and ``python manage.py liteq_worker`` (docs/django.md).
Only this package imports Django.
"""

from liteq.contrib.django.backend import LiteqBackend

__all__ = ["LiteqBackend"]
