"""Nothing taskito runs on PostgreSQL needs a session that outlives a transaction, so every
connection may go through PgBouncer in transaction pooling mode (tests/process/
test_pgbouncer.py runs workers that way). LISTEN is the one exception, and runs only on the
listen alias (TASKITO["LISTEN_DATABASE"], see tests/db/test_listen.py)."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from taskito.db import postgresql  # noqa: F401  (registers its statements)
from taskito.db.statements import STATEMENTS

#: session state a transaction pooler loses or hands to the next client
SESSION_STATE = re.compile(r"((^|;)\s*SET\s|\bset_config\(|\bPREPARE\s|\bDECLARE\s|"
                           r"\bpg_(try_)?advisory_lock|\bWITH HOLD\b|\bTEMP(ORARY)?\s+TABLE"
                           r"|\bLISTEN\s)", re.I)
ON_LISTEN_CONNECTION = {"postgresql.listen_jobs", "postgresql.listen_done",
                        "postgresql.unlisten_done"}


def test_no_statement_keeps_session_state():
    offenders = [name for name, st in STATEMENTS.items()
                 if name.startswith(("base.", "postgresql.")) and SESSION_STATE.search(st.sql)
                 and name not in ON_LISTEN_CONNECTION]
    assert offenders == []


def test_the_session_state_check_would_catch_one():
    for sql in ("SET statement_timeout = 5", "SELECT set_config('a.b', '1', false)",
                "SELECT pg_advisory_lock(1)", "LISTEN x",
                "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "PREPARE p AS SELECT 1"):
        assert SESSION_STATE.search(sql), sql
    for sql in ("UPDATE taskito_job SET status = 1 WHERE id = %s",
                "SELECT pg_advisory_xact_lock(1)"):  # ends with its transaction: fine
        assert not SESSION_STATE.search(sql), sql


def test_psycopg_does_not_prepare_statements_on_the_server():
    """psycopg 3 prepares a statement on the server after 5 runs unless prepare_threshold is
    None; Django's backend makes None the default, which a pooled deployment relies on."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    if "prepare_threshold" in connection.settings_dict.get("OPTIONS", {}):
        pytest.skip("this run asks for prepared statements (TASKITO_TEST_PG_OPTIONS)")
    assert connection.get_connection_params()["prepare_threshold"] is None
