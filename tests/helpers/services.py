"""Services some tests need (Redis, chromium): skipped locally without them, a failure in CI.

CI (`CI=true`, as `.ci/run` runs) starts or installs each of them; a test that would skip
there hides a broken set-up, so it fails instead and says what was missing."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS = {"host": "127.0.0.1", "port": 6379}


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test because `reason`; fail it instead under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true and this test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def redis_client() -> Any:
    """A client of the Redis at REDIS that answered a ping, or unavailable()."""
    try:
        import redis
    except ImportError:
        unavailable("the redis package is not installed (pip install -e '.[dev]')")
    client = redis.Redis(**REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        unavailable(f"no Redis at {REDIS['host']}:{REDIS['port']}: {exc}")
    return client
