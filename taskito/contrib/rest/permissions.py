"""Permission classes of the REST views, from TASKITO["REST_PERMISSION_CLASSES"]."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission

from taskito.conf import taskito_settings
from taskito.contrib import access
from taskito.exceptions import ConfigurationError


class TaskitoPermission(BasePermission):
    """The admin's rules (taskito.contrib.access): active staff with the model's view
    permission to read, the matching admin action's permission to act; superusers pass.
    The view names its route in `route`."""

    message = access.NOT_STAFF

    def has_permission(self, request: Any, view: Any) -> bool:
        why = access.refusal(request.user, getattr(view, "route", None))
        if why is None:
            return True
        self.message = why[1]
        return False


def permission_classes() -> list[type[BasePermission]]:
    """Dotted paths from the setting (read on each request, so overrides apply); the
    admin's rules (TaskitoPermission) by default."""
    paths: Any = taskito_settings.get("REST_PERMISSION_CLASSES")
    if paths is None:
        return [TaskitoPermission]
    if isinstance(paths, str) or not isinstance(paths, list | tuple):
        raise ConfigurationError(
            "TASKITO['REST_PERMISSION_CLASSES'] must be a list of dotted paths")
    return [import_string(p) if isinstance(p, str) else p for p in paths]
