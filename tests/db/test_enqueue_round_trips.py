"""The single enqueue is the producer's hot path: outside a transaction, `delay()` is one
statement (on PostgreSQL the insert and its NOTIFY together, in autocommit: one round trip)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_delay_outside_a_transaction_is_one_statement():
    if connection.vendor == "sqlite":
        pytest.skip("database servers only: SQLite enqueues through the raw sqlite3 connection")
    tasks.add.delay(0, 0)  # warm-up: the dialect, the task's plan
    with CaptureQueriesContext(connection) as queries:
        tasks.add.delay(1, 2)
    assert len(queries) == 1, [q["sql"] for q in queries]
    if connection.vendor == "postgresql":
        assert "pg_notify" in queries[0]["sql"]
