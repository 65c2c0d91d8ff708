"""Fixtures for runtime tests: hooks into a running job, the taskito logger left unconfigured
(signal capture is tests/conftest.py's `capture`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskito.runtime import logs


@pytest.fixture
def on_start() -> Iterator[Callable[[Callable[..., None]], None]]:
    """`on_start(fn)`: call fn(job_id=..., ...) whenever a job starts (before the task runs),
    as another process would act while the task is running."""
    from taskito import signals

    installed: list[Callable[..., None]] = []

    def install(fn: Callable[..., None]) -> None:
        def receiver(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            fn(**kwargs)

        signals.job_started.connect(receiver, weak=False)
        installed.append(receiver)

    yield install
    for receiver in installed:
        signals.job_started.disconnect(receiver)


@pytest.fixture
def unconfigured() -> Iterator[logging.Logger]:
    """The `taskito` logger as Django's default LOGGING leaves it (tests.settings configures
    it); restored afterwards."""
    target = logging.getLogger("taskito")
    saved = (target.level, list(target.handlers), target.propagate, logging.root.level,
             list(logging.root.handlers))
    target.setLevel(logging.NOTSET)
    for handler in list(target.handlers):
        target.removeHandler(handler)
    yield target
    level, handlers, propagate, root_level, root_handlers = saved
    for lg, keep in ((target, handlers), (logging.root, root_handlers)):
        for handler in list(lg.handlers):
            if handler not in keep:
                lg.removeHandler(handler)
    target.handlers[:] = handlers
    target.setLevel(level)
    target.propagate = propagate
    logging.root.setLevel(root_level)
    if hasattr(target, logs._MARK):
        delattr(target, logs._MARK)
