"""Fixtures for tests that run real worker and producer processes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, child_env
from tests.process.helpers import Proc

Spawn = Callable[..., Proc]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """`spawn(name, argv, **env)`: start a process on the test database (see `child_env`),
    with stdout/stderr in files under tmp_path; anything still running is killed after the
    test."""
    procs: list[Proc] = []

    def start(name: str, argv: list[str], **env: str) -> Proc:
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as out_fh, err.open("wb") as err_fh:
            popen = subprocess.Popen(argv, cwd=ROOT, stdout=out_fh, stderr=err_fh,
                                     env=child_env(PYTHONUNBUFFERED="1", **env))
        proc = Proc(name, popen, out, err)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.kill()
        proc.popen.wait(timeout=30)
