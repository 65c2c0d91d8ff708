"""Advancing workflows, inside the transaction that records their steps' outcomes.

Only outcomes of workflow steps come here (`AttemptsMixin.finish` filters them), so a plain
job pays nothing. A completed step lowers the waiting count of the steps after it and
releases those that wait on nothing more, with the parents' results put first in their
arguments; a step that ended dead or cancelled ends its workflow and cancels the steps that
can no longer run.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from taskito.db.base import Dialect
from taskito.engine.jobs import Outcome
from taskito.workflows import WAITING, StoredGraph, end_workflow, graph_of

logger = logging.getLogger("taskito.workflow")

def advance(d: Dialect, cursor: Any, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Apply the applied outcomes of workflow steps to their workflows."""
    by_flow: dict[uuid.UUID, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.job.workflow_id is not None and o.kind != "retry":
            by_flow[o.job.workflow_id].append(o)
    # One lock order for every worker: workflows by id, within one the step rows first and
    # the workflow row last (PostgreSQL would otherwise find deadlocks between batches).
    for workflow_id, items in sorted(by_flow.items()):
        graph = graph_of(d, cursor, workflow_id)
        if graph is None:  # the workflow row was purged: the steps are plain jobs now
            continue
        done = [o.job.workflow_step for o in items if o.kind == "complete"]
        if done:
            _completed(d, cursor, workflow_id, graph, [s for s in done if s is not None], now)
        for o in items:
            if o.kind in ("dead", "cancelled") and o.job.workflow_step is not None:
                end_workflow(d, cursor, workflow_id, graph, o.job.workflow_step, o.job.id,
                             o.kind, now)


def _completed(d: Dialect, cursor: Any, workflow_id: uuid.UUID, graph: StoredGraph,
               steps: list[int], now: datetime) -> None:
    counts = Counter(child for step in steps for child in graph.children[step])
    if counts:
        d.step_parents_done(cursor, workflow_id, sorted(counts.items()))
        ready = d.ready_steps(cursor, workflow_id, sorted(counts), WAITING)
        if ready:
            wanted = sorted({p for _, step, _ in ready for p in graph.parents[step]})
            results = d.step_results(cursor, workflow_id, wanted)
            d.release_steps(cursor, [
                (job_id, graph.arguments(step, args, results),
                 now + timedelta(seconds=graph.delay[step] or 0))
                for job_id, step, args in ready])
    exits = sum(1 for step in steps if step in graph.exit_set)
    if exits:
        d.exits_done(cursor, workflow_id, exits, now)
