"""The dialect contract, claims: the same claim behaviour on every database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from taskito.db import get_dialect
from tests.testapp import tasks


@pytest.mark.django_db
def test_claim_orders_by_priority_then_due_time(engine, queue):
    now = timezone.now()
    low_old = tasks.noop.apply_async(priority=0)
    high = tasks.noop.apply_async(priority=5)
    low_new = tasks.noop.apply_async(priority=0)
    claimed = engine.claim(worker_id="w", limit=3, now=now + timedelta(seconds=1))
    assert [j.id for j in claimed] == [high.id, low_old.id, low_new.id]


@pytest.mark.django_db
def test_claim_respects_limit_and_marks_running(engine, queue):
    tasks.noop.map([()] * 5)
    claimed = engine.claim(worker_id="w", limit=2)
    assert len(claimed) == 2
    assert queue.stats()["running"] == 2
    assert {j.token for j in claimed} and all(j.attempts == 1 for j in claimed)


@pytest.mark.django_db
def test_claim_skips_jobs_not_yet_due(engine, queue):
    tasks.noop.apply_async(delay=60)
    assert engine.claim(worker_id="w", limit=10) == []
    later = timezone.now() + timedelta(seconds=61)
    assert len(engine.claim(worker_id="w", limit=10, now=later)) == 1


@pytest.mark.django_db
def test_claim_skips_expired_jobs(engine, queue):
    tasks.noop.apply_async(expires=5)
    later = timezone.now() + timedelta(seconds=6)
    assert engine.claim(worker_id="w", limit=10, now=later) == []


@pytest.mark.django_db(transaction=True)
def test_claim_never_hands_a_job_to_two_threads(engine, queue):
    tasks.noop.map([()] * 300)
    seen: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        try:
            while True:
                jobs = engine.claim(worker_id=f"w{n}", limit=7)
                if not jobs:
                    return
                with lock:
                    seen.extend(str(j.id) for j in jobs)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(seen) == 300
    assert len(set(seen)) == 300


@pytest.mark.django_db
def test_sqlite_connection_gets_the_pragmas():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    fresh = connections.create_connection("default")
    with fresh.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 5000
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 1  # NORMAL
        cursor.execute("PRAGMA journal_size_limit")
        assert cursor.fetchone()[0] == 64 * 1024 * 1024
    fresh.close()


def test_dialect_matches_vendor():
    assert get_dialect("default").vendor == connection.vendor
