"""Task name -> task spec, and validation of the @task decorator's options (pure)."""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from taskito.exceptions import ConfigurationError, TaskNotRegistered

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
            "h": 3600, "hour": 3600}


def parse_rate_limit(value: str) -> tuple[int, int]:
    """'100/m' -> (100, 60): that many runs per that many seconds."""
    match = _RATE.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) < 1:
        raise ConfigurationError(
            f"rate_limit {value!r} is not of the form '<count>/<s|m|h>', e.g. '100/m'"
        )
    return int(match.group(1)), _PERIODS[match.group(2)]


@dataclass(frozen=True, slots=True)
class BreakerSpec:
    """A task's circuit breaker: `threshold` failed attempts within `window` seconds open it;
    its jobs then wait `cooldown` seconds, after which one probe job decides."""

    threshold: int = 5
    window: float = 60.0
    cooldown: float = 300.0


#: the keys of the circuit_breaker option and their defaults
BREAKER_DEFAULTS: dict[str, float] = {"threshold": 5, "window": 60.0, "cooldown": 300.0}
BREAKER_KEYS = tuple(BREAKER_DEFAULTS)


def parse_breaker(value: Any) -> BreakerSpec | None:
    """The `circuit_breaker` task option ({"threshold", "window", "cooldown"}, each key
    optional) as a BreakerSpec; None stays None."""
    if value is None or isinstance(value, BreakerSpec):
        return value
    if not isinstance(value, dict):
        raise ConfigurationError(
            f"task option circuit_breaker must be a dict such as {{'threshold': 5, "
            f"'window': 60, 'cooldown': 300}}, not {value!r}")
    unknown = sorted(str(k) for k in set(value) - set(BREAKER_KEYS))
    if unknown:
        raise ConfigurationError(f"unknown circuit_breaker key(s): {', '.join(unknown)}; "
                                 f"valid keys: {', '.join(BREAKER_KEYS)}")
    threshold = value.get("threshold", BREAKER_DEFAULTS["threshold"])
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ConfigurationError(
            f"circuit_breaker threshold must be an int >= 1, not {threshold!r}")
    seconds: dict[str, float] = {}
    for key in ("window", "cooldown"):
        raw = value.get(key, BREAKER_DEFAULTS[key])
        if (isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0
                or raw != raw or raw == float("inf")):
            raise ConfigurationError(
                f"circuit_breaker {key} must be a number of seconds > 0, not {raw!r}")
        seconds[key] = float(raw)
    return BreakerSpec(threshold, seconds["window"], seconds["cooldown"])


@dataclass(frozen=True)
class TaskSpec:
    """Everything the queue and the worker need to know about one task."""

    name: str
    func: Callable[..., Any]
    queue: str | None = None
    priority: int | None = None
    max_retries: int | None = None
    retry_backoff: float | None = None
    retry_delays: tuple[float, ...] | None = None
    max_retry_delay: float | None = None
    timeout: float | None = None
    soft_timeout: float | None = None
    expires: float | None = None
    rate_limit: str | None = None
    max_concurrent: int | None = None
    retry_on: tuple[type[BaseException], ...] = ()
    dont_retry_on: tuple[type[BaseException], ...] = ()
    unique: bool = False
    result_ttl: float | None = None
    #: per-task middleware (taskito.TaskMiddleware instances), run after the global ones
    middleware: tuple[Any, ...] = ()
    #: `circuit_breaker={"threshold": 5, "window": 60, "cooldown": 300}` (see BreakerSpec)
    circuit_breaker: BreakerSpec | None = None
    is_async: bool = field(default=False)

    def should_retry(self, exc: BaseException) -> bool:
        """Whether this exception may be retried at all (retries left is checked elsewhere)."""
        if self.dont_retry_on and isinstance(exc, self.dont_retry_on):
            return False
        if self.retry_on:
            return isinstance(exc, self.retry_on)
        return True


#: keyword arguments @task accepts (besides `name`)
OPTIONS = frozenset(f.name for f in fields(TaskSpec)) - {"name", "func", "is_async"}


def _non_negative(name: str, value: Any, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigurationError(f"task option {name} must be a number >= 0, not {value!r}")


def _exception_tuple(name: str, value: Any) -> tuple[type[BaseException], ...]:
    if value is None:
        return ()
    items = tuple(value) if isinstance(value, list | tuple | set | frozenset) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigurationError(f"task option {name} takes exception classes, not {item!r}")
    return items


def build_spec(func: Callable[..., Any], name: str | None = None, **options: Any) -> TaskSpec:
    """Validate decorator options and build a TaskSpec."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ConfigurationError(f"unknown task option(s): {', '.join(unknown)}; "
                                 f"valid options: {', '.join(sorted(OPTIONS))}")
    limit = options.get("max_concurrent")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(f"task option max_concurrent must be an int >= 1, not {limit!r}")
    for key in ("max_retries", "priority"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigurationError(f"task option {key} must be an int, not {value!r}")
    if options.get("max_retries") is not None and options["max_retries"] < 0:
        raise ConfigurationError("task option max_retries must be >= 0")
    for key in ("retry_backoff", "max_retry_delay", "timeout", "soft_timeout", "expires",
                "result_ttl"):
        _non_negative(key, options.get(key))
    delays = options.get("retry_delays")
    if delays is not None:
        if not isinstance(delays, list | tuple) or not delays:
            raise ConfigurationError("task option retry_delays must be a non-empty list")
        for d in delays:
            _non_negative("retry_delays", d, allow_none=False)
        options["retry_delays"] = tuple(float(d) for d in delays)
    if options.get("rate_limit") is not None:
        parse_rate_limit(options["rate_limit"])
    queue = options.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ConfigurationError(f"task option queue must be a non-empty string, not {queue!r}")
    if options.get("middleware") is not None:
        from taskito.middleware import per_task  # middleware reads settings; registry is pure

        options["middleware"] = per_task(options["middleware"])
    else:
        options.pop("middleware", None)
    if "circuit_breaker" in options:
        options["circuit_breaker"] = parse_breaker(options["circuit_breaker"])
    options["retry_on"] = _exception_tuple("retry_on", options.get("retry_on"))
    options["dont_retry_on"] = _exception_tuple("dont_retry_on", options.get("dont_retry_on"))
    task_name = name or f"{func.__module__}.{func.__qualname__}"
    return TaskSpec(name=task_name, func=func,
                    is_async=inspect.iscoroutinefunction(func), **options)


class Registry:
    """Process-wide map of task names to specs, filled by @task at import time."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}
        self._resolvers: list[Callable[[str], TaskSpec | None]] = []
        self._periodic: dict[str, PeriodicSpec] = {}
        self._lock = threading.Lock()
        #: names of the registered tasks that have a circuit breaker: the worker's one cheap
        #: check ("is any breaker involved?") for every other task
        self.breakers: frozenset[str] = frozenset()

    def register(self, spec: TaskSpec) -> None:
        with self._lock:
            existing = self._tasks.get(spec.name)
            if existing is not None and _origin(existing.func) != _origin(spec.func):
                raise ConfigurationError(
                    f"two different functions are registered as task {spec.name!r}; "
                    "give one of them another name=..."
                )
            self._tasks[spec.name] = spec
            self._update_breakers()

    def _update_breakers(self) -> None:
        self.breakers = frozenset(n for n, s in self._tasks.items() if s.circuit_breaker)

    def get(self, name: str) -> TaskSpec:
        try:
            return self._tasks[name]
        except KeyError:
            raise TaskNotRegistered(f"no task is registered as {name!r}") from None

    def find(self, name: str) -> TaskSpec | None:
        return self._tasks.get(name)

    def add_resolver(self, resolver: Callable[[str], TaskSpec | None]) -> None:
        """Let `resolve` ask `resolver(name)` for a task nobody registered yet (the Django
        Tasks backend imports a `@django.tasks.task` by its module path this way)."""
        with self._lock:
            if resolver not in self._resolvers:
                self._resolvers.append(resolver)

    def resolve(self, name: str) -> TaskSpec | None:
        """`find`, else the first spec a resolver builds (registered for next time)."""
        spec = self._tasks.get(name)
        if spec is not None:
            return spec
        for resolver in list(self._resolvers):
            spec = resolver(name)
            if spec is not None:
                self.register(spec)
                return spec
        return None

    def add_periodic(self, spec: PeriodicSpec) -> None:
        with self._lock:
            self._periodic[spec.name] = spec

    def periodic(self) -> list[PeriodicSpec]:
        return list(self._periodic.values())

    def names(self) -> Sequence[str]:
        return sorted(self._tasks)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._tasks.pop(name, None)
            self._update_breakers()


@dataclass(frozen=True)
class PeriodicSpec:
    """A schedule declared in code with @queue.periodic; workers sync it into PeriodicTask."""

    name: str
    task_name: str
    cron: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    queue: str | None = None
    timezone: str = "UTC"


def _origin(func: Callable[..., Any]) -> tuple[str, str]:
    return (getattr(func, "__module__", ""), getattr(func, "__qualname__", repr(func)))


registry = Registry()
