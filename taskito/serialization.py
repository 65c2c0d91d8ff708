"""JSON in and out for arguments, keyword arguments, results and metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from taskito.exceptions import SerializationError

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


#: "no value given" for optional JSON arguments, where None is a value (a null result)
UNSET: Any = object()


def dumps(value: Any, what: str = "value") -> str:
    """Encode to compact JSON or raise SerializationError naming `what`."""
    try:
        return _dumps(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{what} is not JSON-serializable: {exc}") from None


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def dump_call(task_name: str, args: Iterable[Any] | None, kwargs: Mapping[str, Any] | None
              ) -> tuple[str, str]:
    """Encode a call's arguments; on failure name the first argument that is not JSON."""
    args_list = list(args) if args is not None else []
    kwargs_dict = dict(kwargs) if kwargs is not None else {}
    try:
        return _dumps(args_list), _dumps(kwargs_dict)
    except (TypeError, ValueError):
        pass
    for index, value in enumerate(args_list):
        _check(value, f"argument {index} of {task_name}")
    for key, value in kwargs_dict.items():
        if not isinstance(key, str):
            raise SerializationError(f"keyword {key!r} of {task_name} is not a string")
        _check(value, f"keyword argument {key!r} of {task_name}")
    raise SerializationError(f"arguments of {task_name} are not JSON-serializable")


_canonical = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                              sort_keys=True).encode


def unique_key_for(task_name: str, args: Iterable[Any] | None,
                   kwargs: Mapping[str, Any] | None) -> str:
    """The key of `unique=True`: a SHA-256 hex digest (64 characters, whatever the size of the
    arguments) of the task name and the canonical JSON of the call (keys sorted, compact).
    Call after `dump_call`, which names an argument that is not JSON."""
    call = [task_name, list(args) if args is not None else [],
            dict(kwargs) if kwargs is not None else {}]
    return hashlib.sha256(_canonical(call).encode()).hexdigest()


def _check(value: Any, what: str) -> None:
    try:
        _dumps(value)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"{what} is not JSON-serializable ({type(value).__name__}: {exc})"
        ) from None
