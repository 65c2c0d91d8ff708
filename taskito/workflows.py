"""Signatures and the chain / group / chord canvases, compiled into a graph of steps.

`apply_async()` hands the compiled graph to `Queue.apply_workflow`, which writes the workflow
row and every step in one transaction; the worker that finishes a step releases the steps
that wait on it (`engine.workflows`). Nothing here touches the database.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from taskito.serialization import dumps, loads
from taskito.states import WorkflowStatus

if TYPE_CHECKING:
    from taskito.db.base import Dialect
    from taskito.queue import Queue
    from taskito.workflow_result import WorkflowResult

#: when a step that waits on others is scheduled: never, until its last parent completes and
#: the worker that finished it sets a real time (claims skip it without a new condition)
WAITING = datetime(9999, 1, 1, tzinfo=UTC)
#: the most members one group may have (and so the most parents a chord body may have)
MAX_GROUP = 10_000
#: options a step takes through `.set()`, as `apply_async` takes them
STEP_OPTIONS = frozenset({"queue", "priority", "max_retries", "timeout", "soft_timeout",
                          "delay", "result_ttl", "metadata"})
_REFUSED = {
    "eta": "give delay= (seconds after the step becomes ready) instead",
    "expires": "a step that expired would stall its workflow",
    "unique_key": "a step is never merged with another job",
    "depends_on": "a step waits on the steps before it in the workflow",
}
#: how a step receives its parents' results: not at all, the one result, or their list
RECEIVE_NONE, RECEIVE_ONE, RECEIVE_LIST = 0, 1, 2


class Canvas:
    """What can be applied as a workflow: a signature, a chain, a group or a chord."""

    def _queue(self) -> Queue:
        for sig in self.signatures():
            if sig.queue_obj is not None:
                return sig.queue_obj
        from taskito.queue import queue

        return queue

    def signatures(self) -> Iterable[Signature]:
        raise NotImplementedError

    def apply_async(self) -> WorkflowResult:
        """Write the workflow (every step, one transaction); returns its WorkflowResult.
        Inside the caller's `transaction.atomic()` it is part of that transaction."""
        return self._queue().apply_workflow(self)

    def delay(self) -> WorkflowResult:
        """Same as `apply_async()`."""
        return self.apply_async()

    async def aapply_async(self) -> WorkflowResult:
        """`apply_async()` for async code."""
        return await self._queue().aapply_workflow(self)


@dataclass(frozen=True, eq=True)
class Signature(Canvas):
    """A task call to make later: `task.s(*args, **kwargs)` receives its parent's result as
    its first argument; `task.si(...)` (immutable) ignores it."""

    task_name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False
    queue_obj: Queue | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.task_name, str) or not self.task_name:
            raise ValueError(f"a signature needs a task name, not {self.task_name!r}")
        check_options(self.options)

    def set(self, **options: Any) -> Signature:
        """A copy with these step options (queue, priority, max_retries, timeout,
        soft_timeout, delay, result_ttl, metadata)."""
        check_options(options)
        return dataclasses.replace(self, options={**self.options, **options})

    def signatures(self) -> Iterable[Signature]:
        yield self

    def to_dict(self) -> dict[str, Any]:
        """The signature as JSON-ready data (`Signature.from_dict` reads it back)."""
        data = {"task": self.task_name, "args": list(self.args), "kwargs": dict(self.kwargs),
                "options": dict(self.options), "immutable": self.immutable}
        dumps(data, "signature")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        return cls(data["task"], tuple(data.get("args", ())), dict(data.get("kwargs", {})),
                   dict(data.get("options", {})), bool(data.get("immutable", False)))


def check_options(options: Mapping[str, Any]) -> None:
    for name in options:
        if name in _REFUSED:
            raise ValueError(f"workflow steps do not take {name}=: {_REFUSED[name]}")
        if name not in STEP_OPTIONS:
            raise ValueError(f"unknown step option {name!r}; expected one of: "
                             f"{', '.join(sorted(STEP_OPTIONS))}")


def _canvas(item: Any) -> Canvas:
    if not isinstance(item, Canvas):
        raise TypeError(f"a workflow is made of signatures (task.s(...)) and chain/group/chord, "
                        f"not {item!r}")
    return item


class chain(Canvas):
    """Run steps one after the other; each mutable step receives the previous result."""

    def __init__(self, *steps: Canvas) -> None:
        flat: list[Canvas] = []
        for step in map(_canvas, steps):
            flat.extend(step.steps if isinstance(step, chain) else [step])
        self.steps: list[Canvas] = flat

    def signatures(self) -> Iterable[Signature]:
        for step in self.steps:
            yield from step.signatures()

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, self.steps))})"


class group(Canvas):
    """Run members side by side; the group's result is the list of their results, in order.
    `group(a.s(), b.s())` or `group(sig for ...)`."""

    def __init__(self, *members: Any) -> None:
        if len(members) == 1 and not isinstance(members[0], Canvas):
            members = tuple(members[0])
        self.members = [_canvas(m) for m in members]

    def signatures(self) -> Iterable[Signature]:
        for member in self.members:
            yield from member.signatures()

    def __repr__(self) -> str:
        return f"group({len(self.members)} members)"


class chord(Canvas):
    """A group (`header`) then `body`, which receives the list of the header's results."""

    def __init__(self, header: Any, body: Canvas) -> None:
        self.header = header if isinstance(header, group) else group(header)
        self.body = _canvas(body)

    def signatures(self) -> Iterable[Signature]:
        yield from self.header.signatures()
        yield from self.body.signatures()

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"


@dataclass(slots=True)
class Step:
    """One node of a compiled workflow: the call, the steps it waits on (in result order)
    and how it receives their results."""

    sig: Signature
    parents: list[int]
    receive: int


@dataclass(slots=True)
class Graph:
    """A compiled workflow: steps in depth-first order, the last steps (whose results are the
    workflow's result) and whether that result is a list (a group at the end)."""

    steps: list[Step]
    exits: list[int]
    as_list: bool

    def to_json(self) -> str:
        return dumps({
            "parents": [s.parents for s in self.steps],
            "receive": [s.receive for s in self.steps],
            "delay": [s.sig.options.get("delay") if s.parents else None for s in self.steps],
            "exits": self.exits, "list": self.as_list}, "workflow graph")


def compile_workflow(canvas: Canvas) -> Graph:
    """Number the steps depth-first (so a group's results come back in member order) and
    link each to the exits of what came before it; raise ValueError on an empty chain or
    group or a group over MAX_GROUP members."""
    steps: list[Step] = []

    def add(item: Canvas, parents: list[int], as_list: bool) -> tuple[list[int], bool]:
        if isinstance(item, Signature):
            mode = RECEIVE_NONE
            if parents and not item.immutable:
                mode = RECEIVE_LIST if as_list else RECEIVE_ONE
            steps.append(Step(item, parents, mode))
            return [len(steps) - 1], False
        if isinstance(item, chain):
            if not item.steps:
                raise ValueError("a chain needs at least one step")
            for part in item.steps:
                parents, as_list = add(part, parents, as_list)
            return parents, as_list
        if isinstance(item, group):
            if not item.members:
                raise ValueError("a group needs at least one member")
            if len(item.members) > MAX_GROUP:
                raise ValueError(f"a group may have at most {MAX_GROUP} members, not "
                                 f"{len(item.members)}")
            exits: list[int] = []
            for member in item.members:
                exits.extend(add(member, parents, as_list)[0])
            return exits, True
        if isinstance(item, chord):
            header, _ = add(item.header, parents, as_list)
            return add(item.body, header, True)
        raise TypeError(f"cannot run {item!r} as a workflow")

    exits, as_list = add(canvas, [], False)
    return Graph(steps, exits, as_list)


@dataclass(slots=True)
class StoredGraph:
    """A workflow's graph as stored on its row, with the links the worker follows."""

    parents: list[list[int]]
    receive: list[int]
    delay: list[float | None]
    exits: list[int]
    as_list: bool
    children: list[list[int]]
    exit_set: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> StoredGraph:
        data = loads(text)
        parents = [list(p) for p in data["parents"]]
        children: list[list[int]] = [[] for _ in parents]
        for step, links in enumerate(parents):
            for parent in links:
                children[parent].append(step)
        return cls(parents, list(data["receive"]), list(data["delay"]), list(data["exits"]),
                   bool(data["list"]), children, frozenset(data["exits"]))

    def descendants(self, step: int) -> list[int]:
        """Every step that waits, directly or not, on `step`."""
        seen: set[int] = set()
        frontier = [step]
        while frontier:
            nxt = [c for s in frontier for c in self.children[s] if c not in seen]
            seen.update(nxt)
            frontier = nxt
        return sorted(seen)

    def arguments(self, step: int, args: str, results: Mapping[int, str | None]) -> str:
        """The step's stored arguments (JSON) with its parents' results put first, as JSON
        text spliced together (no decoding: the results are JSON already)."""
        mode = self.receive[step]
        if mode == RECEIVE_NONE:
            return args
        texts = [results.get(p) or "null" for p in self.parents[step]]
        given = texts[0] if mode == RECEIVE_ONE else "[" + ", ".join(texts) + "]"
        rest = args.strip()[1:].strip()
        return "[" + given + ("]" if rest == "]" else ", " + rest)


# -- rules over a workflow's rows, shared by the user's verbs (cancel, replay) and the worker
logger = logging.getLogger("taskito.workflow")

#: parsed graphs by workflow id (a graph never changes once written); bounded
_graphs: dict[uuid.UUID, StoredGraph] = {}
_graphs_lock = threading.Lock()
_GRAPH_CACHE = 256


def graph_of(d: Dialect, cursor: Any, workflow_id: uuid.UUID) -> StoredGraph | None:
    graph = _graphs.get(workflow_id)
    if graph is None:
        text = d.workflow_graph(cursor, workflow_id)
        if text is None:
            return None
        graph = StoredGraph.parse(text)
        with _graphs_lock:
            if len(_graphs) >= _GRAPH_CACHE:
                _graphs.clear()
            _graphs[workflow_id] = graph
    return graph


def end_workflow(d: Dialect, cursor: Any, workflow_id: uuid.UUID, graph: StoredGraph,
                 step: int, job_id: uuid.UUID, kind: str, now: datetime) -> None:
    """A step ended dead or cancelled: the workflow fails (or is cancelled) and the pending
    steps that wait on it, which can no longer run, are cancelled."""
    later = graph.descendants(step)
    if later:
        ids = sorted(d.pending_steps(cursor, workflow_id, later))
        verb = "failed" if kind == "dead" else "was cancelled"
        d.cancel_steps(cursor, ids, now, f"workflow step {step} {verb}: {job_id}")
    status = WorkflowStatus.FAILED if kind == "dead" else WorkflowStatus.CANCELLED
    d.end_workflow(cursor, workflow_id, int(status), now)
    logger.info("workflow=%s step=%d job=%s ended=%s", workflow_id, step, job_id, kind)
