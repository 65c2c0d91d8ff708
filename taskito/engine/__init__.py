"""The engine: what workers and the lifeline do to rows (the WORKER's verbs). The runtime
calls it explicitly; it is the only writer of the attempts it claims.

    engine = Engine(queue)
    jobs = engine.claim(worker_id="w1", limit=8)
    engine.finish([...outcomes...])
"""

from __future__ import annotations

from taskito.engine.attempts import AttemptsMixin
from taskito.engine.housekeeping import HousekeepingMixin
from taskito.engine.jobs import ClaimedJob, Outcome, OutcomeKind
from taskito.engine.liveness import LivenessMixin
from taskito.engine.throttles import ThrottlesMixin

__all__ = ["ClaimedJob", "Engine", "Outcome", "OutcomeKind"]


class Engine(AttemptsMixin, LivenessMixin, HousekeepingMixin, ThrottlesMixin):
    """The worker's verbs over one Queue's rows; sibling parts over one EngineBase."""
