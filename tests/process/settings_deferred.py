"""The tests' settings with SQLite's default DEFERRED transactions (what a host project gets
when it ignores taskito.W001): taskito's own writes must still never see "database is
locked"."""

from __future__ import annotations

from typing import Any

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

_options: dict[str, Any] = DATABASES["default"].setdefault("OPTIONS", {})  # type: ignore[assignment]
_options.pop("transaction_mode", None)
SILENCED_SYSTEM_CHECKS = ["taskito.W001"]
