"""JobThreads: the worker's job threads, taking claimed jobs from one queue."""

from __future__ import annotations

import threading

import pytest

from taskito.runtime.threads import JobThreads


def test_every_item_runs_once_on_at_most_size_threads():
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def run(item: int) -> None:
        with lock:
            seen.append((item, threading.current_thread().name))

    threads = JobThreads(3, run, name="t")
    threads.put_many(range(50))
    threads.shutdown(wait=True)
    assert sorted(item for item, _ in seen) == list(range(50))
    assert len({name for _, name in seen}) <= 3


def test_an_item_that_raises_does_not_stop_its_thread(caplog):
    done: list[int] = []

    def run(item: int) -> None:
        if item == 0:
            raise RuntimeError("boom")
        done.append(item)

    threads = JobThreads(1, run, name="t")
    threads.put_many([0, 1, 2])
    threads.shutdown(wait=True)
    assert done == [1, 2]
    assert "unexpected error" in caplog.text


def test_shutdown_with_cancel_hands_back_what_did_not_start():
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def run(item: int) -> None:
        ran.append(item)
        started.set()
        release.wait(timeout=30)

    threads = JobThreads(1, run, name="t")
    threads.put_many([1, 2, 3])
    assert started.wait(timeout=30)
    left = threads.shutdown(wait=False, cancel=True)
    release.set()
    assert (ran, left) == ([1], [2, 3])
    with pytest.raises(RuntimeError, match="shut down"):
        threads.put_many([4])


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="size"):
        JobThreads(0, print, name="t")
