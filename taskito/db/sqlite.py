"""SQLite: claims as one short write statement, pragmas, data_version wake-ups."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from taskito.db import statements as q
from taskito.db.base import ChangeWatcher, Dialect
from taskito.db.statements import CLAIM_COLUMNS, JOB, stmt
from taskito.states import JobStatus

logger = logging.getLogger(__name__)

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA journal_size_limit=67108864",
)


_INSERT_QMARK = q.INSERT_JOB.replace("%s", "?")
# scheduled_at only orders the batch (see Engine.claim): as stored text it sorts the same,
# without a datetime parsed per claimed row
_RETURNING = [f"CAST({c} AS TEXT)" if c == "scheduled_at" else c for c in CLAIM_COLUMNS]
# "{index}": the partial "ready" index in claim order; "{where}": Dialect.ready_filter
_CLAIM = stmt("sqlite", "claim", (
    f"UPDATE {JOB} SET status = {q.RUNNING}, started_at = %s, worker_id = %s, "
    f"claim_token = %s, attempts = attempts + 1, cancel_requested = %s "
    f"WHERE id IN (SELECT j.id FROM {JOB} j INDEXED BY {{index}} WHERE {{where}} "
    f"ORDER BY j.priority DESC, j.scheduled_at, j.id LIMIT %s) "
    f"RETURNING {', '.join(_RETURNING)}"), (JobStatus.PENDING, JobStatus.RUNNING))


_CHECKPOINT = stmt("sqlite", "wal_checkpoint", "PRAGMA wal_checkpoint(PASSIVE)")
#: seconds between a worker's background checkpoints (see Checkpointer): the shortest, after
#: one that copied pages, and the longest, reached by doubling while there is nothing to copy
CHECKPOINT_EVERY = (0.01, 0.1)


class Checkpointer:
    """Copies the write-ahead log into the database file from a thread of the worker, on a
    connection of its own, every CHECKPOINT_EVERY seconds.

    SQLite otherwise checkpoints inside the commit that grows the log past 1,000 pages
    (`wal_autocheckpoint`), file sync included: one claim or enqueue in a few hundred paid
    ~10 ms, which was the whole of the round trip's p99. A PASSIVE checkpoint takes no lock
    that writers wait on, and small ones stall the file system's other writes less than one
    of 1,000 pages does (measured p99 of 200 x delay -> result on one machine: 12 ms with the
    automatic checkpoint, 10-13 ms checkpointing every 0.25-1 s, 6 ms every 50 ms, 3.9 ms
    every 10 ms, 2.5 ms with no checkpoint at all). The automatic one stays as a backstop (a
    process without a worker, a checkpointer that falls behind)."""

    def __init__(self, dialect: Dialect, interval: tuple[float, float] = CHECKPOINT_EVERY
                 ) -> None:
        self.dialect = dialect
        self.interval = interval
        #: pages copied into the database file so far (tests and the curious)
        self.checkpointed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskito-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        shortest, longest = self.interval
        wait = shortest
        # the log's size and its pages copied at the last look: the pragma counts from the
        # log's start, which the next writer rewinds once everything was copied
        last_log = last_done = 0
        wrapper = connections.create_connection(self.dialect.alias)
        try:
            while not self._stop.wait(wait):
                copied = 0
                try:
                    wrapper.ensure_connection()
                    with wrapper.wrap_database_errors:
                        raw: Any = wrapper.connection
                        _busy, log, done = raw.execute(_CHECKPOINT).fetchone()
                    if log < last_log:  # rewound since
                        last_done = 0
                    copied = max(0, done - last_done)
                    last_log, last_done = log, done
                    self.checkpointed += copied
                except DatabaseError as exc:  # the next round tries again
                    logger.debug("background checkpoint failed: %s", exc)
                    wrapper.close()
                wait = shortest if copied else min(longest, wait * 2)
        finally:
            wrapper.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class DataVersionWatcher(ChangeWatcher):
    """`PRAGMA data_version` changes when another connection commits: a shared-memory read."""

    def __init__(self, dialect: Dialect, interval: float) -> None:
        super().__init__(dialect, interval)
        self._version: int | None = None

    def changed(self) -> bool:
        connection = self.dialect.connection
        connection.ensure_connection()
        with connection.wrap_database_errors:
            raw: Any = connection.connection
            version = raw.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version = version
            return True
        return False

    def reset(self) -> None:
        self.changed()


class SQLiteDialect(Dialect):
    vendor = "sqlite"

    def insert_jobs(self, rows: Sequence[Sequence[Any]]) -> None:
        # The enqueue hot path: sqlite3's own cursor skips Django's per-call wrapper and the
        # regex that rewrites "%s" to "?" (about 10 of the ~60 microseconds of a single enqueue).
        # It is the same connection, so Django's transaction (atomic) still applies, and
        # wrap_database_errors turns sqlite3 errors into django.db ones.
        connection = self.connection
        connection.ensure_connection()
        with connection.wrap_database_errors:
            raw: Any = connection.connection
            if len(rows) == 1:
                raw.execute(_INSERT_QMARK, rows[0])
            else:
                raw.executemany(_INSERT_QMARK, rows)

    def claim(self, *, queues: Sequence[str] | None, limit: int, now: datetime,
              worker_id: str, token: str) -> list[Sequence[Any]]:
        # One autocommit statement: it takes the write lock once, waits on busy_timeout, and
        # cannot fail with a stale read snapshot the way a SELECT-then-UPDATE transaction can.
        where, params = self.ready_filter(queues)
        # Without ANALYZE statistics SQLite prefers the (status, ...) indexes and sorts every
        # pending row; the partial "ready" indexes are already in claim order.
        index = "taskito_job_ready_queue" if queues and len(queues) == 1 else "taskito_job_ready"
        sql = _CLAIM.format(index=index, where=where)
        now_param = self.dt(now)
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [now_param, worker_id, token, False, now_param, now_param,
                                 *params, limit])
            return list(cursor.fetchall())

    # Django stores UTC text; "%%s" is strftime's seconds since the epoch ("%%": a literal %)
    epoch_minute_sql = "CAST(strftime('%%s', recorded_at) AS INTEGER) / 60"
    ttl_end_sql = "datetime(completed_at, '+' || result_ttl || ' seconds')"

    def watcher(self, interval: float, wake: Callable[[], None] | None = None,
                queues: Sequence[str] | None = None) -> ChangeWatcher:
        return DataVersionWatcher(self, interval)

    def upkeep(self) -> Checkpointer | None:
        connection = self.connection
        if connection.settings_dict.get("NAME") in (":memory:", "") or _is_memory(connection):
            return None  # no file, no log
        return Checkpointer(self)

    def configure_connection(self, connection: BaseDatabaseWrapper) -> None:
        if connection.settings_dict.get("NAME") in (":memory:", "") or _is_memory(connection):
            return
        with connection.cursor() as cursor:
            for pragma in PRAGMAS:
                cursor.execute(pragma)


def _is_memory(connection: BaseDatabaseWrapper) -> bool:
    is_in_memory = getattr(connection, "is_in_memory_db", None)
    return bool(is_in_memory()) if callable(is_in_memory) else False
