"""The single enqueue is the producer's hot path: outside a transaction, `delay()` is one
statement (on PostgreSQL the insert and its NOTIFY together, in autocommit: one round trip)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, DataError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from taskito.models import Job
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


# -- the driver path: the single insert skips Django's cursor wrapper, not its rules ------------

def test_delay_in_a_broken_atomic_block_is_refused_as_django_refuses_it():
    if connection.vendor == "sqlite":
        pytest.skip("database servers only: SQLite's raw path predates this check")
    with transaction.atomic():
        with (pytest.raises(DatabaseError), transaction.atomic(savepoint=False),
              connection.cursor() as cursor):
            cursor.execute("SELECT * FROM no_such_table")
        with pytest.raises(TransactionManagementError):
            tasks.add.delay(1, 2)
    assert not Job.objects.exists()


def test_a_database_error_from_delay_is_a_django_error_and_the_connection_goes_on():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite stores any integer")
    with pytest.raises(DataError):  # django.db's, not psycopg's
        tasks.add.apply_async((1, 2), priority=2**40)  # beyond the integer column
    assert Job.objects.get(id=tasks.add.delay(1, 2).id).args == "[1,2]"


def test_delay_after_the_connection_was_closed_reconnects():
    first = tasks.add.delay(1, 2)
    connection.close()
    second = tasks.add.delay(3, 4)
    assert set(Job.objects.values_list("id", flat=True)) == {first.id, second.id}


def test_delay_is_seen_by_an_execute_wrapper():
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return execute(sql, params, many, context)

    if connection.vendor == "sqlite":
        pytest.skip("database servers only: SQLite enqueues through the raw sqlite3 connection")
    tasks.add.delay(0, 0)  # connected (MySQL sets its isolation level on a new connection)
    with connection.execute_wrapper(wrapper):
        tasks.add.delay(1, 2)
    assert [sql for sql in seen if "taskito_job" in sql] == seen and len(seen) == 1, seen
