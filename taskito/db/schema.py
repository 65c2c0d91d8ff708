"""What taskito's schema looks like on each database, as far as Django's checks can tell.

On MariaDB/MySQL Django ignores the conditions of partial indexes and partial unique
constraints, and says so for every command (models.W036, models.W037); migration 0004 puts
equivalents in their place there (a generated column under a unique index, status-led claim
indexes). The throttle key (300 characters) is longer than the 255 that mysql.W003 warns about
for older row formats; it fits the 3,072-byte index keys of the supported servers (InnoDB
DYNAMIC rows, MariaDB 10.6+ and MySQL 8). Those warnings about taskito's own models are
dropped; a user's own models keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connections

#: warnings about taskito's models that do not hold there, by vendor
REPLACED = {"mysql": frozenset({"models.W036", "models.W037", "mysql.W003"})}


def without_replaced(messages: Iterable[Any], databases: Iterable[str] | None) -> list[Any]:
    """`messages` (from a taskito model's checks) without the warnings that taskito's own
    migrations answer on the checked databases."""
    messages = list(messages)
    replaced: set[str] = set()
    for alias in databases or ():
        if alias in connections:
            replaced |= REPLACED.get(connections[alias].vendor, frozenset())
    return [m for m in messages if getattr(m, "id", None) not in replaced]
