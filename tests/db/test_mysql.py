"""What MariaDB/MySQL needs beyond the shared contract: a supported server version, exact unique
keys under a case-insensitive default collation, the checks Django raises about partial
indexes answered, and the isolation-level warning. The vendor-neutral parts run everywhere."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from taskito.checks import check_settings
from taskito.db import get_dialect
from taskito.db.mysql import server_problem
from taskito.db.schema import without_replaced
from taskito.models import Job, Throttle
from tests.testapp import tasks

on_mysql = pytest.mark.skipif("connection.vendor != 'mysql'", reason="MariaDB/MySQL only")


@pytest.mark.parametrize(("version", "problem"), [
    ("10.11.19-MariaDB-0+deb12u1", None),
    ("10.6.0-MariaDB", None),
    ("11.4.2-MariaDB-log", None),
    ("8.0.36", None),
    ("8.4.0-commercial", None),
    ("10.5.23-MariaDB-1:10.5.23+maria~deb11", "MariaDB 10.5.23"),
    ("5.7.44-log", "MySQL 5.7.44"),
    ("8.0.0-dmr", "MySQL 8.0.0"),
])
def test_server_versions_without_skip_locked_are_named(version, problem):
    found = server_problem(version)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and "SKIP LOCKED" in found


def test_an_unreadable_server_version_is_a_problem():
    assert "cannot tell" in str(server_problem("unknown"))


@pytest.mark.django_db
def test_unique_keys_compare_exactly(queue):
    first = tasks.add.apply_async(args=(1, 1), unique_key="Report-A")
    other_case = tasks.add.apply_async(args=(1, 1), unique_key="report-a")
    again = tasks.add.apply_async(args=(1, 1), unique_key="Report-A")
    assert first.id != other_case.id
    assert again.id == first.id
    assert Job.objects.filter(unique_key__in=["Report-A", "report-a"]).count() == 2


@pytest.fixture
def as_mysql(monkeypatch):
    """The check's view of the job database as a MySQL one with these OPTIONS."""
    database = settings.DATABASES["default"]

    def configure(**options):
        monkeypatch.setitem(database, "ENGINE", "django.db.backends.mysql")
        monkeypatch.setitem(database, "OPTIONS", options)

    return configure


@pytest.mark.parametrize("level", ["repeatable read", "serializable", "READ UNCOMMITTED"])
def test_an_isolation_level_other_than_read_committed_is_warned_about(as_mysql, level):
    as_mysql(isolation_level=level)
    messages = check_settings()
    assert [m.id for m in messages] == ["taskito.W002"]
    assert level.lower() in messages[0].msg


@pytest.mark.parametrize("options", [{}, {"isolation_level": "read committed"}])
def test_read_committed_is_not_warned_about(as_mysql, options):
    as_mysql(**options)
    assert check_settings() == []


@on_mysql
def test_the_partial_index_warnings_about_taskitos_models_are_answered():
    for model in (Job, Throttle):
        ids = {m.id for m in model.check(databases=["default"])}
        assert not ids & {"models.W036", "models.W037", "mysql.W003"}, ids


@on_mysql
def test_only_the_answered_warnings_are_dropped():
    from django.core.checks import Warning

    kept = Warning("something else", id="models.W999")
    dropped = Warning("no partial indexes", id="models.W037")
    assert without_replaced([kept, dropped], ["default"]) == [kept]
    assert without_replaced([kept, dropped], None) == [kept, dropped]


@on_mysql
@pytest.mark.django_db
def test_the_running_server_is_supported():
    get_dialect("default").check_server()
    with connection.cursor() as cursor:
        cursor.execute("SHOW INDEX FROM taskito_job WHERE Key_name = 'taskito_job_unique_active'")
        assert cursor.fetchall(), "migration 0004 made the unique index"
