"""Permission classes of the REST views, from TASKITO["REST_PERMISSION_CLASSES"]."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission, IsAdminUser

from taskito.conf import taskito_settings
from taskito.exceptions import ConfigurationError


def permission_classes() -> list[type[BasePermission]]:
    """Dotted paths from the setting (read on each request, so overrides apply); staff only
    (IsAdminUser) by default."""
    paths: Any = taskito_settings.get("REST_PERMISSION_CLASSES")
    if paths is None:
        return [IsAdminUser]
    if isinstance(paths, str) or not isinstance(paths, list | tuple):
        raise ConfigurationError(
            "TASKITO['REST_PERMISSION_CLASSES'] must be a list of dotted paths")
    return [import_string(p) if isinstance(p, str) else p for p in paths]
