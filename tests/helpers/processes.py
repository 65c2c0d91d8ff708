"""Subprocesses of the tests (workers, web servers, producers): each one's output goes to files
(a test can wait on a line appearing, and no pipe ever fills up), every wait has a deadline,
and a Launcher stops whatever it started when the test ends."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


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

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for exit (fail the test after `timeout` seconds) and return the exit code."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"{self.name} still running after {timeout} s\n"
                                 f"{self.describe()}") from None

    def communicate(self, timeout: float = 60.0) -> tuple[str, str]:
        """Wait for exit (as wait()) and return (stdout, stderr)."""
        self.wait(timeout)
        return self.stdout, self.stderr

    def describe(self) -> str:
        return (f"{self.name} exit={self.popen.poll()}\n--- stdout\n{self.stdout}\n"
                f"--- stderr\n{self.stderr}")


class Launcher:
    """Starts subprocesses in `cwd` with `env`, their output in files under `directory`."""

    def __init__(self, directory: Path, *, cwd: Path = ROOT,
                 env: Mapping[str, str] | None = None) -> None:
        self.directory, self.cwd, self.env = directory, cwd, env
        self.procs: list[Proc] = []

    def start(self, name: str, argv: Sequence[str],
              env: Mapping[str, str] | None = None) -> Proc:
        out, err = self.directory / f"{name}.out", self.directory / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(list(argv), cwd=self.cwd, stdout=stdout, stderr=stderr,
                                     env=dict(env if env is not None else self.env or {}))
        proc = Proc(name, popen, out, err)
        self.procs.append(proc)
        return proc

    def stop(self, *, graceful: bool = False, timeout: float = 30.0) -> None:
        """End what still runs: SIGTERM and a wait when `graceful` (a worker drains, and a
        process under coverage writes its data), else SIGKILL."""
        running = [p for p in self.procs if p.popen.poll() is None]
        for proc in running:
            proc.popen.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        for proc in running:
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=timeout)
