"""Time-ordered job ids (UUID version 7)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from typing import Any

if sys.version_info >= (3, 14):  # pragma: no cover - depends on the interpreter
    new_id: Callable[[], uuid.UUID] = uuid.uuid7
else:
    from uuid6 import uuid7 as _uuid7

    def new_id() -> uuid.UUID:
        """A new UUIDv7: sorts by creation time, unique across processes and hosts."""
        value: uuid.UUID = _uuid7()  # a uuid.UUID subclass
        return value


def as_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from a UUID, its string form or a JobResult; None when it is not one."""
    if isinstance(value, uuid.UUID):
        return value
    inner = getattr(value, "id", None)
    if isinstance(inner, uuid.UUID):
        return inner
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
