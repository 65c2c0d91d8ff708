"""Where SQL may live, and that every statement that moves a job's status makes a move the
state machine allows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import taskito.db.mysql
import taskito.db.postgresql
import taskito.db.sqlite
from taskito.db.base import Dialect
from taskito.db.statements import STATEMENTS, Statement
from taskito.states import JobStatus, can_move

PACKAGE = Path(taskito.db.postgresql.__file__).resolve().parent.parent
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM|PRAGMA \w|"
                 r"LISTEN \w|NOTIFY|ON CONFLICT|RETURNING)\b", re.S)
SET_STATUS = re.compile(r"\bSET status = (\d+|%s)")
WHERE_STATUS = re.compile(r"\b(?:j\.|t\.)?status = (\d+)")


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants and f-string text of a module, docstrings left out."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
            found.append((node.lineno, text))
    return found


def test_no_module_outside_db_and_migrations_holds_sql():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("db", "migrations"):
            continue
        for line, text in _strings(ast.parse(path.read_text())):
            if SQL.search(text):
                offenders.append(f"taskito/{rel}:{line}: {text[:60]!r}")
    assert offenders == []


def test_the_sql_check_would_catch_a_statement():
    tree = ast.parse('"""Reads with SELECT a FROM b."""\n'
                     'x = f"UPDATE {JOB} SET status = 2 WHERE id = %s"\n')
    assert [line for line, text in _strings(tree) if SQL.search(text)] == [2]


def _rendered(statement: Statement) -> str:
    where, _ = Dialect("unused").ready_filter(None)
    return statement.sql.format(where=where, index="i", values="(%s)", marks="%s", partial="",
                                ttl_end="t", table="t", column="c", results="WHEN %s THEN %s",
                                tokens="WHEN %s THEN %s", minute="m")


def _moving() -> list[Statement]:
    return [s for s in STATEMENTS.values() if SET_STATUS.search(_rendered(s)) or s.moves]


@pytest.mark.parametrize("key", sorted(k for k, s in STATEMENTS.items() if s in _moving()))
def test_status_moves_are_declared_allowed_and_match_the_text(key):
    statement = STATEMENTS[key]
    text = _rendered(statement)
    (target,) = SET_STATUS.findall(text)
    sources = {JobStatus(int(n)) for n in WHERE_STATUS.findall(text.split(" SET ", 1)[1])
               } | {JobStatus(int(n)) for n in WHERE_STATUS.findall(text.split(" SET ")[0])}
    assert statement.moves, f"{key} changes status but declares no move"
    for old, new in statement.moves:
        assert can_move(old, new), f"{key}: {old.label} -> {new.label} is not allowed"
        assert old in sources, f"{key}: declares a move from {old.label} it does not check"
        assert target == "%s" or int(target) == new, f"{key}: sets {target}, declares {new}"


def test_every_kind_of_status_change_has_a_statement():
    moves = {m for s in STATEMENTS.values() for m in s.moves}
    p, r, c, d, x = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETE, JobStatus.DEAD,
                     JobStatus.CANCELLED)
    assert {(p, r), (r, c), (r, p), (r, d), (r, x), (p, x)} <= moves
