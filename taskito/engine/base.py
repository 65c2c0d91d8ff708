"""EngineBase: what every part of the engine shares (its queue, database alias and dialect)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskito.db import Dialect, get_dialect

if TYPE_CHECKING:
    from taskito.queue import Queue


class EngineBase:
    """The engine works on the rows of one Queue's database."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def __repr__(self) -> str:
        return f"<Engine of {self.queue!r}>"

    @property
    def using(self) -> str:
        return self.queue.using

    @property
    def dialect(self) -> Dialect:
        return get_dialect(self.queue.using)
