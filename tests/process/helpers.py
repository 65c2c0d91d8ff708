"""argv builders, start barriers and ports for the process tests (Proc and the launcher live
in tests/helpers/processes.py)."""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers.processes import Proc

__all__ = ["Proc", "answers", "free_port", "module_argv", "wait_for_path", "worker_argv"]


def worker_argv(*args: str) -> list[str]:
    """argv of `django-admin taskito_worker <args>`."""
    return [sys.executable, "-m", "django", "taskito_worker", *args]


def module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def wait_for_path(path: Path, timeout: float) -> None:
    """Wait until `path` exists (used by child processes as a start barrier)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.005)


def free_port() -> int:
    """A TCP port that was free a moment ago, for a server subprocess."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    """Whether an HTTP server answers at `url` (any status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
