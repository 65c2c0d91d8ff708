"""Subprocesses for process tests: output goes to files (a test can wait on a line appearing,
and no pipe ever fills up), and a deadline on every wait."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Proc:
    """A subprocess with its stdout and stderr in files."""

    name: str
    popen: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for exit (fail the test after `timeout` seconds) and return the exit code."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"{self.name} still running after {timeout} s\n"
                                 f"{self.describe()}") from None

    def describe(self) -> str:
        return (f"{self.name} exit={self.popen.poll()}\n--- stdout\n{self.stdout}\n"
                f"--- stderr\n{self.stderr}")


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
