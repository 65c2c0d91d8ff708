"""Retry delays: exponential backoff with full jitter, or an explicit list (pure)."""

from __future__ import annotations

import random
from collections.abc import Sequence


def retry_delay(
    retry_number: int,
    *,
    backoff: float,
    max_delay: float,
    delays: Sequence[float] | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry `retry_number` (1 for the first retry).

    With `delays`, retry n waits delays[n-1] (the last entry repeats). Otherwise the wait is
    drawn uniformly from [0, min(max_delay, backoff * 2**(n-1))] ("full jitter"), so many jobs
    failing together do not retry together.
    """
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    if delays:
        return float(min(delays[min(retry_number, len(delays)) - 1], max_delay))
    ceiling = min(max_delay, backoff * (2 ** min(retry_number - 1, 62)))
    return (rng or random).uniform(0.0, ceiling)
