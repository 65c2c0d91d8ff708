"""`async_twin`: the one place that makes the `a`-prefixed async twin of a sync method."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from asgiref.sync import sync_to_async


def async_twin[**P, R](fn: Callable[P, R], name: str | None = None
                       ) -> Callable[P, Coroutine[Any, Any, R]]:
    """The `a`-prefixed twin of a sync method (`name` when the method's own name is not the
    public one), run in Django's sync thread."""

    @functools.wraps(fn)
    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await sync_to_async(fn)(*args, **kwargs)

    twin.__name__ = twin.__qualname__ = name or f"a{fn.__name__}"
    twin.__doc__ = f"Async twin of `{fn.__name__.lstrip('_')}`."
    return twin
