"""PostgreSQL: claims that lock only the rows they take and skip rows others hold, and
LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from taskito.conf import taskito_settings
from taskito.db import statements as q
from taskito.db.base import IDLE_LOOK_MIN, ChangeWatcher, Dialect, ReadyWatcher
from taskito.db.statements import CLAIM_COLUMNS, INSERT_COLUMNS, JOB, METRIC, METRIC_COLUMNS, stmt
from taskito.states import JobStatus

logger = logging.getLogger(__name__)

CHANNEL = "taskito_jobs"
#: finished job ids (one notification each), for JobResult.result() waiters
DONE_CHANNEL = "taskito_done"
#: with LISTEN working, the time-based fallback check only covers lost notifications
LISTEN_FALLBACK = 1.0
RECONNECT_BACKOFF = (0.1, 5.0)


def _pg(name: str, sql: str, *moves: q.Move) -> str:
    return stmt("postgresql", name, sql, *moves)


# The NOTIFY rides in the insert's RETURNING (once per row written): one statement, and
# about 20 microseconds less to parse and plan than the same in a CTE.
_INSERT_NOTIFY = _pg("insert_job", f"{q.INSERT_JOB} RETURNING pg_notify(%s, '')")
_INSERT_UNIQUE_NOTIFY = _pg("insert_unique_job", f"{q.INSERT_JOB} ON CONFLICT DO NOTHING "
                                                 f"RETURNING pg_notify(%s, '')")
_INSERT_UNIQUE_BATCH = _pg("insert_unique_jobs", f"WITH ins AS ({q.INSERT_UNIQUE_JOBS}) "
                                                 f"SELECT id, pg_notify(%s, '') FROM ins")
_COPY_JOBS = _pg("copy_jobs", f"COPY {JOB} ({', '.join(INSERT_COLUMNS)}) FROM STDIN")
_NOTIFY = _pg("notify", "SELECT pg_notify(%s, %s)")
_LISTEN_JOBS = _pg("listen_jobs", f"LISTEN {CHANNEL}")
_LISTEN_DONE = _pg("listen_done", f"LISTEN {DONE_CHANNEL}")
_UNLISTEN_DONE = _pg("unlisten_done", f"UNLISTEN {DONE_CHANNEL}")
_SERVER_PORT = _pg("server_port", "SELECT current_setting('port')")
# A batch travels as one JSON array of rows: the statement text stays the same whatever the
# batch size, and Python's C encoder writes the batch in one go (a multi-row VALUES list made
# psycopg parse ~400 placeholders and quote each value in Python, every batch; per-column
# arrays still dumped each element in Python).
_DONE_VALUES = ("SELECT (e->>0)::uuid AS id, e->>1 AS token, e->>2 AS result, "
                "(e->>3)::float8 AS wall FROM json_array_elements(%s::json) AS e")
_COMPLETE = (f"UPDATE {JOB} t SET status = {q.COMPLETE}, result = v.result, completed_at = %s, "
             f"progress = 100 FROM v WHERE t.id = v.id AND t.claim_token = v.token "
             f"AND t.status = {q.RUNNING}")
_COMPLETE_BATCH = _pg("complete_jobs", (
    f"WITH v AS ({_DONE_VALUES}), done AS ({_COMPLETE} RETURNING t.id) "
    f"SELECT id, pg_notify(%s, id::text) FROM done"), (JobStatus.RUNNING, JobStatus.COMPLETE))
_METRICS_BATCH = _pg("insert_metrics", (
    f"INSERT INTO {METRIC} ({', '.join(METRIC_COLUMNS)}) SELECT (e->>0)::uuid, e->>1, e->>2, "
    f"(e->>3)::boolean, (e->>4)::float8, %s FROM json_array_elements(%s::json) AS e"))
# A batch of completions with their metric rows (for the attempts that landed) and the
# result() wake-ups, as one statement: one round trip, atomic without a transaction block.
_FINISH_COMPLETED = _pg("finish_completed", (
    f"WITH v AS ({_DONE_VALUES}), done AS ({_COMPLETE} RETURNING t.id, t.task_name, "
    f"t.queue), m AS (INSERT INTO {METRIC} ({', '.join(METRIC_COLUMNS)}) SELECT done.id, "
    f"done.task_name, done.queue, true, v.wall, %s FROM done JOIN v ON v.id = done.id) "
    f"SELECT id, pg_notify(%s, id::text) FROM done"), (JobStatus.RUNNING, JobStatus.COMPLETE))
# The MATERIALIZED CTE with its LIMIT keeps the planner from locking more rows than asked;
# FOR NO KEY UPDATE lets error/log rows reference the job without blocking. "{where}":
# Dialect.ready_filter.
_CLAIM = _pg("claim", (
    f"WITH picked AS MATERIALIZED (SELECT j.id FROM {JOB} j WHERE {{where}} "
    f"ORDER BY j.priority DESC, j.scheduled_at, j.id LIMIT %s "
    f"FOR NO KEY UPDATE OF j SKIP LOCKED) "
    f"UPDATE {JOB} t SET status = {q.RUNNING}, started_at = %s, worker_id = %s, "
    f"claim_token = %s, attempts = t.attempts + 1, cancel_requested = false "
    f"FROM picked WHERE t.id = picked.id RETURNING {', '.join(f't.{c}' for c in CLAIM_COLUMNS)}"),
    (JobStatus.PENDING, JobStatus.RUNNING))


def through_proxy(connection: BaseDatabaseWrapper) -> bool:
    """Whether `connection` reaches PostgreSQL through a proxy (PgBouncer, pgpool, a port
    mapping): the server listens on another port than the one the client connected to."""
    with connection.cursor() as cursor:
        cursor.execute(_SERVER_PORT)
        server_port = int(cursor.fetchone()[0])
    raw: Any = connection.connection
    return int(raw.info.port) != server_port


class PostgreSQLDialect(Dialect):
    vendor = "postgresql"

    def __init__(self, alias: str) -> None:
        super().__init__(alias)
        #: (settings generation, alias to LISTEN on or None to poll), see listen_alias()
        self._listen: tuple[int, str | None] | None = None
        #: per thread, as Django's connections are: the cursor of _driver_cursor
        self._cursors = threading.local()

    def listen_alias(self) -> str | None:
        """The alias to LISTEN on: TASKITO["LISTEN_DATABASE"] when set (for the queue on
        TASKITO["DATABASE"]: notifications belong to one database); else this alias, unless
        it reaches the server through a proxy. A LISTEN through a transaction pooler lands on
        whichever server connection the pooler lends, and its notifications go to whoever
        holds that connection next, so then None: poll for ready jobs instead."""
        explicit: str | None = taskito_settings.LISTEN_DATABASE
        if explicit and self.alias == taskito_settings.DATABASE:
            return explicit
        generation = taskito_settings.generation
        if self._listen is not None and self._listen[0] == generation:
            return self._listen[1]
        try:
            proxied = through_proxy(self.connection)
        except DatabaseError:  # unreachable now: assume a direct line, ask again next time
            return self.alias
        if proxied:
            logger.warning("database %r reaches PostgreSQL through a proxy (a pooler?): "
                           "polling for jobs instead of LISTEN; set TASKITO['LISTEN_DATABASE'] "
                           "to an alias that connects directly", self.alias)
        self._listen = (generation, None if proxied else self.alias)
        return self._listen[1]

    def uid(self, value: uuid.UUID) -> Any:
        return value

    def dt(self, value: datetime | None) -> Any:
        return value  # what Django's adapt_datetimefield_value does here, without its lookups

    # -- enqueue: NOTIFY is transactional, so workers hear of a job only once it commits,
    # and PostgreSQL folds identical notifications of one transaction into one.
    def insert_jobs(self, rows: Sequence[Sequence[Any]]) -> None:
        connection = self.connection
        if len(rows) == 1 and (driver := self.driver_connection(connection)) is not None:
            # The single enqueue's hot path (see _driver_cursor); same connection, so it
            # joins Django's transaction, and driver errors come out as django.db ones.
            with connection.wrap_database_errors:
                self._driver_cursor(driver).execute(_INSERT_NOTIFY, [*rows[0], CHANNEL],
                                                    prepare=False)
            return
        with connection.cursor() as cursor:
            if len(rows) == 1:
                cursor.execute(_INSERT_NOTIFY, [*rows[0], CHANNEL])
            else:
                # COPY is several times faster than a multi-row INSERT for batches.
                raw: Any = cursor.cursor
                with raw.copy(_COPY_JOBS) as copy:
                    for row in rows:
                        copy.write_row(row)
                self.notify_new_jobs(cursor)

    def _driver_cursor(self, raw: Any) -> Any:
        """This thread's psycopg cursor on `raw`, kept between calls: a new cursor costs about
        25 microseconds (its adapters are looked up afresh). Server-side binding with an
        unnamed statement (prepare=False): the parameters travel apart from the SQL instead
        of being quoted into it (another 25), in the same single round trip, and nothing
        outlives the statement, so a transaction pooler is fine with it."""
        cursor = getattr(self._cursors, "cursor", None)
        if cursor is None or cursor.connection is not raw:  # Django reconnected
            import psycopg  # not at import time: the module loads without the extra

            cursor = self._cursors.cursor = psycopg.Cursor(raw)
        return cursor

    def notify_new_jobs(self, cursor: Any) -> None:
        cursor.execute(_NOTIFY, [CHANNEL, ""])

    def insert_unique_job(self, row: Sequence[Any]) -> bool:
        with self.connection.cursor() as cursor:
            cursor.execute(_INSERT_UNIQUE_NOTIFY, [*row, CHANNEL])
            return cursor.fetchone() is not None

    def _unique_batch(self, rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        group = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
        return (_INSERT_UNIQUE_BATCH.format(values=", ".join([group] * len(rows))),
                [*(value for row in rows for value in row), CHANNEL])

    # -- finish: one statement per batch instead of one per job (round trips cost here).
    def complete_jobs(self, cursor: Any, items: Sequence[tuple[uuid.UUID, str, str | None]],
                      at: Any) -> set[uuid.UUID]:
        # the fourth column (wall time) is finish_completed's; no metric rows are made here
        rows = json.dumps([(str(job_id), token, result, 0) for job_id, token, result in items])
        cursor.execute(_COMPLETE_BATCH, [rows, at, DONE_CHANNEL])
        return {self.to_uuid(r[0]) for r in cursor.fetchall()}

    def finish_completed(self, items: Sequence[tuple[uuid.UUID, str, str | None, float, str, str]],
                         at: Any) -> set[uuid.UUID]:
        rows = json.dumps([(str(job_id), token, result, wall)
                           for job_id, token, result, wall, _, _ in items])
        with self.connection.cursor() as cursor:
            cursor.execute(_FINISH_COMPLETED, [rows, at, at, DONE_CHANNEL])
            return {self.to_uuid(r[0]) for r in cursor.fetchall()}

    def notify_finished(self, cursor: Any, job_ids: Sequence[uuid.UUID]) -> None:
        for job_id in job_ids:
            cursor.execute(_NOTIFY, [DONE_CHANNEL, str(job_id)])

    def insert_metrics(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        """(job_id, task_name, queue, succeeded, wall_time_ms, recorded_at) rows; one
        recorded_at for the batch (finish writes them all at one time)."""
        if rows:
            batch = [(str(job_id), task, queue, ok, wall)
                     for job_id, task, queue, ok, wall, _ in rows]
            cursor.execute(_METRICS_BATCH, [rows[0][5], json.dumps(batch)])

    epoch_minute_sql = "CAST(FLOOR(EXTRACT(EPOCH FROM recorded_at) / 60) AS BIGINT)"
    ttl_end_sql = "completed_at + result_ttl * interval '1 second'"

    def claim(self, *, queues: Sequence[str] | None, limit: int, now: datetime,
              worker_id: str, token: str) -> list[Sequence[Any]]:
        where, params = self.ready_filter(queues)
        with self.connection.cursor() as cursor:
            cursor.execute(_CLAIM.format(where=where), [now, now, *params, limit, now, worker_id,
                                                        token])
            return list(cursor.fetchall())

    def job_watcher(self, job_id: uuid.UUID, interval: float) -> ChangeWatcher:
        alias = self.listen_alias()
        if alias is None or connections[alias].in_atomic_block:
            # polling: no direct line, or notifications would only arrive between transactions
            return super().job_watcher(job_id, interval)
        return DoneWatcher(self, connections[alias], job_id)

    def watcher(self, interval: float, wake: Callable[[], None] | None = None,
                queues: Sequence[str] | None = None) -> ChangeWatcher:
        if wake is None:  # a one-off wait (JobResult.result): poll, backing off
            return super().watcher(interval)
        alias = self.listen_alias()
        if alias is None:  # behind a transaction pooler: look for ready jobs, backing off
            return ReadyWatcher(self, max(interval, IDLE_LOOK_MIN), self.fallback_interval,
                                queues)
        return NotifyWatcher(self, wake, alias)


class NotifyWatcher(ChangeWatcher):
    """LISTENs on its own connection in a thread; a notification wakes the worker at once.
    After a lost connection it reconnects (backing off up to 5 s) and reports a change, since
    notifications sent meanwhile are gone."""

    def __init__(self, dialect: Dialect, wake: Callable[[], None], alias: str) -> None:
        super().__init__(dialect, LISTEN_FALLBACK)
        self._wake = wake
        self._alias = alias
        self._flag = threading.Event()
        self._flag.set()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="taskito-listen",
                                        daemon=True)
        self._thread.start()

    def changed(self) -> bool:
        if self._flag.is_set():
            self._flag.clear()
            self._last = time.monotonic()  # the fallback look counts from here
            return True
        return super().changed()

    def reset(self) -> None:
        self._flag.clear()
        super().reset()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _signal(self) -> None:
        self._flag.set()
        self._wake()

    def _listen(self) -> None:
        low, high = RECONNECT_BACKOFF
        backoff = low
        while not self._stop.is_set():
            wrapper = connections.create_connection(self._alias)
            try:
                wrapper.ensure_connection()
                raw: Any = wrapper.connection
                raw.autocommit = True
                raw.execute(_LISTEN_JOBS)
                self.connected.set()
                self._signal()  # anything may have been enqueued while we were away
                backoff = low
                while not self._stop.is_set():
                    for _ in raw.notifies(timeout=0.5, stop_after=1):
                        self._signal()
            except Exception as exc:  # a lost connection, a restarting server
                self.connected.clear()
                logger.warning("LISTEN connection lost, reconnecting in %.1fs: %s", backoff,
                               exc)
                self._stop.wait(backoff)
                backoff = min(high, backoff * 2)
            finally:
                try:
                    wrapper.close()
                except Exception:
                    logger.debug("closing the LISTEN connection failed", exc_info=True)


class DoneWatcher(ChangeWatcher):
    """LISTENs on the caller thread's connection of the listen alias (autocommit) for one
    job's finish."""

    def __init__(self, dialect: Dialect, connection: BaseDatabaseWrapper,
                 job_id: uuid.UUID) -> None:
        super().__init__(dialect, LISTEN_FALLBACK)
        self.job_id = str(job_id)
        self._connection = connection
        with connection.cursor() as cursor:
            cursor.execute(_LISTEN_DONE)

    def wait(self, timeout: float) -> bool:
        connection = self._connection
        raw: Any = connection.connection
        # At most LISTEN_FALLBACK at a time, so a lost notification costs a re-read, no more.
        notes = raw.notifies(timeout=min(timeout, LISTEN_FALLBACK))
        try:
            with connection.wrap_database_errors:
                for note in notes:
                    if note.payload == self.job_id:
                        return True
        finally:
            notes.close()  # releases the connection's lock at once
        return False

    def close(self) -> None:
        connection = self._connection
        if connection.connection is not None and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute(_UNLISTEN_DONE)
