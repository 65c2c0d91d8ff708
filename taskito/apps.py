"""App config: find tasks modules, register checks and the SQLite connection set-up."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created
from django.utils.module_loading import autodiscover_modules


class TaskitoConfig(AppConfig):
    name = "taskito"
    verbose_name = "Taskito"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # No queries and no threads here: ready() runs in every process (web, migrate, shell).
        from taskito import checks  # noqa: F401  (registers the system checks)
        from taskito.conf import taskito_settings
        from taskito.contrib.tasks_backend.utils import uses_tasks_backend
        from taskito.db import on_connection_created

        connection_created.connect(on_connection_created, dispatch_uid="taskito_pragmas")
        module = taskito_settings.AUTODISCOVER_MODULE
        if module:
            autodiscover_modules(module)
        if uses_tasks_backend(getattr(settings, "TASKS", None)):
            # Lets a worker find @django.tasks.task functions outside `tasks` modules and send
            # the framework's signals; on Django 5.2 without django-tasks this fails loudly.
            import taskito.contrib.tasks_backend.backend  # noqa: F401
