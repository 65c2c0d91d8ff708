"""The tests' settings plus signal receivers that raise on every taskito signal, and a
global middleware that raises in every hook: user code reached through signals or middleware
must never stop a worker or record an outcome twice."""

from __future__ import annotations

from typing import Any

from taskito import signals
from tests.settings import *  # noqa: F403
from tests.settings import TASKITO

TASKITO = {**TASKITO, "MIDDLEWARE": ["tests.testapp.middleware.Raising"]}


def _raise(sender: Any, **kwargs: Any) -> None:
    raise RuntimeError("receiver exploded")


for _signal in (signals.job_started, signals.job_progress, signals.job_finished,
                signals.job_dead):
    _signal.connect(_raise, weak=False, dispatch_uid=f"raising-{id(_signal)}")
