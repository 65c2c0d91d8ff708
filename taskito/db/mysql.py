"""MariaDB 10.6+ and MySQL 8.0+ (InnoDB): claims with SELECT ... FOR UPDATE SKIP LOCKED in one
short transaction, upserts with ON DUPLICATE KEY UPDATE, polling wake-ups.

What differs from the other two databases, and why:
- No UPDATE ... RETURNING (MariaDB has INSERT/DELETE ... RETURNING only, MySQL none): a claim
  locks and reads its rows, then updates them by id, in one transaction; the rows it read are
  locked, so what it returns is what it wrote.
- No partial indexes or partial unique constraints (Django ignores their conditions there):
  migration 0004 gives the "ready" indexes a leading `status` column and keeps "one pending or
  running job per unique_key" with a stored generated column that holds the key only while the
  job is pending or running, under a plain unique index (NULLs never collide).
- No LISTEN/NOTIFY: an idle worker looks for ready jobs with a lock-free read, more often
  right after it found some (ReadyWatcher), and `result()` re-reads the job, backing off.
- `key` is a reserved word: the throttle table's statements quote it.
- Isolation: Django opens MySQL connections in READ COMMITTED unless DATABASES OPTIONS say
  otherwise, and taskito's statements rely on it in one place: after a duplicate-key refusal,
  `active_unique` must see the holder that committed a moment ago, which a REPEATABLE READ
  snapshot taken earlier in the caller's transaction may not show (checks warn, taskito.W002).
  Everything the worker does is correct under either level: claims and every status move are
  locking reads or conditional single-row writes, which read the latest committed rows.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, NotSupportedError, OperationalError, transaction

from taskito.db import statements as q
from taskito.db.base import IDLE_LOOK_MIN, ChangeWatcher, Dialect, ReadyWatcher
from taskito.db.statements import (
    CLAIM_COLUMNS,
    INSERT_COLUMNS,
    JOB,
    LEASE,
    QUEUE_STATE,
    THROTTLE,
    WORKER,
    stmt,
)
from taskito.states import JobStatus

logger = logging.getLogger(__name__)

#: the oldest servers with SELECT ... FOR UPDATE SKIP LOCKED
MIN_MARIADB = (10, 6)
MIN_MYSQL = (8, 0, 1)
#: the unique index over the generated column (migration 0004); a duplicate on it is a refusal
UNIQUE_INDEX = "taskito_job_unique_active"
DUPLICATE_KEY = 1062
DEADLOCK = 1213
#: tries of a unique enqueue in its own transaction that keeps losing deadlocks
DEADLOCK_RETRIES = 5
#: batches of at least this many jobs are written by insert_jobs itself, in statements of at
#: most about this many characters (the server's max_allowed_packet is 16 MiB by default)
BATCH_LITERALS_FROM = 20
BATCH_STATEMENT_CHARS = 1 << 20
#: an idle worker's looks for work come at least this far apart (seconds)
def _my(name: str, sql: str, *moves: q.Move) -> str:
    return stmt("mysql", name, sql, *moves)


_INSERT_PREFIX = _my("insert_jobs", (f"INSERT INTO {JOB} ({', '.join(INSERT_COLUMNS)}) "
                                     f"VALUES "))
# the generated column (migration 0004) holds the key only while the job is pending or running
_ACTIVE_UNIQUE = _my("active_unique", f"SELECT id FROM {JOB} WHERE active_unique_key = %s")
_HOLDER_LATEST = _my("holder_latest", (f"SELECT id FROM {JOB} WHERE active_unique_key = %s "
                                        f"LOCK IN SHARE MODE"))
_SERVER_VERSION = _my("server_version", "SELECT VERSION()")
# The claim reads and locks first ("{where}": Dialect.ready_filter over alias j). A locking
# read does not lock the rows its subqueries read (paused queues, dependencies), only the
# jobs it returns; SKIP LOCKED passes over jobs another claim holds.
_PICK = _my("claim_pick", (
    f"SELECT {', '.join(f'j.{c}' for c in CLAIM_COLUMNS)} FROM {JOB} j WHERE {{where}} "
    f"ORDER BY j.priority DESC, j.scheduled_at, j.id LIMIT %s FOR UPDATE SKIP LOCKED"))
_TAKE = _my("claim_take", (
    f"UPDATE {JOB} SET status = {q.RUNNING}, started_at = %s, worker_id = %s, "
    f"claim_token = %s, attempts = attempts + 1, cancel_requested = %s "
    f"WHERE id IN ({{marks}}) AND status = {q.PENDING}"), (JobStatus.PENDING, JobStatus.RUNNING))
# A batch of unique jobs: a duplicate (a key an active job holds) updates nothing and inserts
# nothing; the ids that were written are read back (no RETURNING here).
_INSERT_UNIQUE_BATCH = _my("insert_unique_jobs", (
    f"INSERT INTO {JOB} ({', '.join(INSERT_COLUMNS)}) VALUES {{values}} "
    f"ON DUPLICATE KEY UPDATE id = id"))
_WRITTEN = _my("written_ids", f"SELECT id FROM {JOB} WHERE id IN ({{marks}})")
# the holders of keys, compared exactly (the binary generated column of migration 0004)
_ACTIVE_UNIQUE_MANY = _my("active_unique_many", (
    f"SELECT active_unique_key, id FROM {JOB} WHERE active_unique_key IN ({{marks}})"))
# One job by id, whatever its due time, once its dependencies are complete (test mode and
# taskito.testing.run_jobs): lock and read, then the claim's update.
_PICK_ONE = _my("claim_job_pick", (
    f"SELECT {', '.join(f'j.{c}' for c in CLAIM_COLUMNS)} FROM {JOB} j WHERE j.id = %s "
    f"AND j.status = {q.PENDING} AND (j.has_dependencies = %s OR NOT EXISTS (SELECT 1 "
    f"FROM {q.DEPENDENCY} d JOIN {JOB} p ON p.id = d.depends_on_id WHERE d.job_id = j.id "
    f"AND p.status <> {q.COMPLETE})) FOR UPDATE"))
# Finishing a batch: one statement, each row's result and token picked by id.
_COMPLETE_BATCH = _my("complete_jobs", (
    f"UPDATE {JOB} SET status = {q.COMPLETE}, result = CASE id {{results}} END, "
    f"completed_at = %s, progress = 100 WHERE id IN ({{marks}}) AND status = {q.RUNNING} "
    f"AND claim_token = CASE id {{tokens}} END"), (JobStatus.RUNNING, JobStatus.COMPLETE))
_EXPIRING = _my("expiring", (
    f"SELECT id FROM {JOB} WHERE status = {q.PENDING} AND expires_at IS NOT NULL "
    f"AND expires_at <= %s ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED"))
_EXPIRE = _my("expire_due", (
    f"UPDATE {JOB} SET status = {q.CANCELLED}, error = %s, completed_at = %s "
    f"WHERE id IN ({{marks}}) AND status = {q.PENDING}"), (JobStatus.PENDING, JobStatus.CANCELLED))
_DELETE_OLDER = _my("delete_older",
                    "DELETE FROM {table} WHERE {column} < %s ORDER BY {column} LIMIT %s")
_SET_PAUSED = _my("set_paused", (
    f"INSERT INTO {QUEUE_STATE} (name, paused, updated_at) VALUES (%s, %s, %s) "
    f"ON DUPLICATE KEY UPDATE paused = VALUES(paused), updated_at = VALUES(updated_at)"))
_HEARTBEAT = _my("heartbeat", (
    f"INSERT INTO {WORKER} (worker_id, hostname, pid, queues, concurrency, started_at, "
    f"last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s) "
    f"ON DUPLICATE KEY UPDATE last_seen = VALUES(last_seen)"))
# A lease: renew or take over an expired one with a conditional update; when no row matched,
# insert one, and a duplicate key means someone else holds it.
_RENEW_LEASE = _my("renew_lease", (
    f"UPDATE {LEASE} SET holder = %s, expires_at = %s "
    f"WHERE name = %s AND (holder = %s OR expires_at < %s)"))
_INSERT_LEASE = _my("insert_lease",
                    f"INSERT INTO {LEASE} (name, holder, expires_at) VALUES (%s, %s, %s)")
# Throttles: make sure the counter row exists (a no-op upsert, which never fails), then one
# conditional update counts the run; a matched row (FOUND_ROWS, as Django connects) = admitted.
_ENSURE_THROTTLE = _my("ensure_throttle", (
    f"INSERT INTO {THROTTLE} (`key`, window_no, count) VALUES (%s, %s, 0) "
    f"ON DUPLICATE KEY UPDATE `key` = `key`"))
# MySQL assigns left to right, so `count` is computed from the old window_no.
_TAKE_RATE = _my("take_rate", (
    f"UPDATE {THROTTLE} SET count = CASE WHEN window_no = %s THEN count + 1 ELSE 1 END, "
    f"window_no = %s WHERE `key` = %s AND (window_no <> %s OR count < %s)"))
_TAKE_SLOT = _my("take_slot", (f"UPDATE {THROTTLE} SET count = count + 1 "
                               f"WHERE `key` = %s AND count < %s"))
_RELEASE_SLOT = _my("release_slot", (f"UPDATE {THROTTLE} SET count = count - 1 "
                                     f"WHERE `key` = %s AND count > 0"))
_SLOT_KEYS = _my("slot_keys", f"SELECT `key` FROM {THROTTLE} WHERE `key` LIKE %s")
_SET_SLOT = _my("set_slot", f"UPDATE {THROTTLE} SET count = %s WHERE `key` = %s")

# no ON CONFLICT: a no-op upsert (never fails, locks the row)
_ENSURE_BREAKER = _my("ensure_breaker", (
    f"INSERT INTO {q.BREAKER} (task_name, state, failure_count) VALUES (%s, {q.CLOSED}, 0) "
    f"ON DUPLICATE KEY UPDATE task_name = task_name"))

# An idle worker's look for work: one indexed read, no lock, no transaction.

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class MySQLDialect(Dialect):
    vendor = "mysql"
    #: no change signal to wait on: an idle worker re-claims at most this far apart
    fallback_interval = 0.05
    # plain arithmetic on the stored UTC value: UNIX_TIMESTAMP() would read it in the
    # session's time zone
    epoch_minute_sql = "TIMESTAMPDIFF(MINUTE, '1970-01-01 00:00:00', recorded_at)"
    ttl_end_sql = "DATE_ADD(completed_at, INTERVAL result_ttl SECOND)"

    def watcher(self, interval: float, wake: Callable[[], None] | None = None,
                queues: Sequence[str] | None = None) -> ChangeWatcher:
        if wake is None:  # a one-off wait (JobResult.result): re-read the job, backing off
            return super().watcher(interval)
        return ReadyWatcher(self, max(interval, IDLE_LOOK_MIN), self.fallback_interval, queues)

    def probe_tables(self) -> None:
        self.check_server()
        super().probe_tables()

    def check_server(self) -> None:
        """Raise NotSupportedError, naming the version found, on a server without SKIP LOCKED."""
        with self.cursor() as cursor:
            cursor.execute(_SERVER_VERSION)
            text = str(cursor.fetchone()[0])
        problem = server_problem(text)
        if problem:
            raise NotSupportedError(problem)

    # -- enqueue ---------------------------------------------------------------------------
    def insert_jobs(self, rows: Sequence[Sequence[Any]]) -> None:
        if len(rows) < BATCH_LITERALS_FROM:
            super().insert_jobs(rows)
            return
        # A batch: multi-row INSERTs written here. mysqlclient's executemany quotes every
        # value through a Python call (two thirds of a 10,000-job map() measured there); the
        # values of a batch repeat (queue, task, status, timestamps, empty arguments), so each
        # distinct one is quoted once, by the driver's own quoting.
        connection = self.connection
        connection.ensure_connection()
        raw: Any = connection.connection
        quoted: dict[tuple[type, Any], str] = {}

        def literal(value: Any) -> str:
            key = (type(value), value)
            text = quoted.get(key)
            if text is None:
                text = quoted[key] = raw.literal(value).decode(raw.encoding)
            return text

        statements: list[str] = []
        chunk: list[str] = []
        size = 0
        for row in rows:
            values = "(" + ",".join([literal(v) for v in row]) + ")"
            if chunk and size + len(values) > BATCH_STATEMENT_CHARS:
                statements.append(_INSERT_PREFIX + ",".join(chunk))
                chunk, size = [], 0
            chunk.append(values)
            size += len(values) + 1
        statements.append(_INSERT_PREFIX + ",".join(chunk))
        with self.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)  # no parameters: the driver formats nothing

    def insert_unique_job(self, row: Sequence[Any]) -> bool:
        """Insert unless an active job holds the key (called first in its transaction).

        A finishing worker frees a key by moving the job's entry in the unique index; an
        insert's duplicate check that meets that move half-way can deadlock with it, and
        InnoDB then rolls back one of the two transactions. A worker retries its finish. When
        this enqueue runs in a transaction of its own (the caller was not in one), nothing
        else was in it yet, so the insert is simply tried again; inside a caller's
        transaction the deadlock error reaches the caller, who must run the transaction
        again (as for any deadlock on MySQL)."""
        connection = self.connection
        own = connection.in_atomic_block and not connection.savepoint_ids
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                return self._insert_unique(row)
            except OperationalError as exc:
                if not (own and _is_error(exc, DEADLOCK) and attempt < DEADLOCK_RETRIES):
                    raise
                logger.debug("unique enqueue chosen as a deadlock victim; trying again")
        raise AssertionError("unreachable")

    def _insert_unique(self, row: Sequence[Any]) -> bool:
        # A plain read first (READ COMMITTED: the latest commit, no lock that could hold a
        # worker up until the caller's transaction ends): most refusals need no insert.
        # Under REPEATABLE READ the read would come from an old snapshot; the insert's
        # duplicate check alone decides there.
        if self._read_committed():
            with self.cursor() as cursor:
                cursor.execute(_ACTIVE_UNIQUE, [row[INSERT_COLUMNS.index("unique_key")]])
                if cursor.fetchone() is not None:
                    return False
        # A duplicate key fails only this statement (InnoDB rolls back the statement, not the
        # transaction), so a caller's transaction stays usable, as ON CONFLICT keeps it
        # elsewhere.
        try:
            with self.cursor() as cursor:
                cursor.execute(q.INSERT_JOB, row)
        except IntegrityError as exc:
            if _is_duplicate(exc, UNIQUE_INDEX):
                return False
            raise
        return True

    def insert_unique_jobs(self, rows: Sequence[Sequence[Any]]) -> set[uuid.UUID]:
        written: set[uuid.UUID] = set()
        group = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
        with self.cursor() as cursor:
            for start in range(0, len(rows), self.batch_rows):
                chunk = rows[start:start + self.batch_rows]
                cursor.execute(_INSERT_UNIQUE_BATCH.format(values=", ".join([group] * len(chunk))),
                               [value for row in chunk for value in row])
                ids = [row[0] for row in chunk]
                cursor.execute(_WRITTEN.format(marks=", ".join(["%s"] * len(ids))), ids)
                written.update(self.to_uuid(r[0]) for r in cursor.fetchall())
        return written

    def active_unique_many(self, keys: Sequence[str]) -> dict[str, uuid.UUID]:
        # as active_unique: under REPEATABLE READ only a locking read sees the latest commit
        sql = _ACTIVE_UNIQUE_MANY + ("" if self._read_committed() else " LOCK IN SHARE MODE")
        found: dict[str, uuid.UUID] = {}
        with self.cursor() as cursor:
            for start in range(0, len(keys), self.batch_rows):
                chunk = list(keys[start:start + self.batch_rows])
                cursor.execute(sql.format(marks=", ".join(["%s"] * len(chunk))), chunk)
                found.update((key, self.to_uuid(job_id)) for key, job_id in cursor.fetchall())
        return found

    def active_unique(self, key: str) -> uuid.UUID | None:
        # Under READ COMMITTED (Django's default here) a plain read sees the holder that made
        # the insert fail; under REPEATABLE READ the transaction's snapshot may predate it,
        # and only a locking read sees the latest commit (taskito.W002 warns of that level).
        with self.cursor() as cursor:
            cursor.execute(_ACTIVE_UNIQUE if self._read_committed() else _HOLDER_LATEST, [key])
            hit = cursor.fetchone()
        return None if hit is None else self.to_uuid(hit[0])

    def _read_committed(self) -> bool:
        return getattr(self.connection, "isolation_level", None) == "read committed"

    def expire_due(self, cursor: Any, at: datetime) -> list[uuid.UUID]:
        stamp = self.dt(at)
        cursor.execute(_EXPIRING, [stamp])
        ids = [r[0] for r in cursor.fetchall()]
        if not ids:
            return []
        # the rows are locked by this transaction: every one of them moves
        cursor.execute(_EXPIRE.format(marks=", ".join(["%s"] * len(ids))),
                       ["expired", stamp, *ids])
        expired = [self.to_uuid(i) for i in ids]
        self.notify_finished(cursor, expired)
        return expired

    def delete_older(self, table: str, column: str, at: datetime, limit: int) -> int:
        if (table, column) not in q.TTL_PRUNED:
            raise ValueError(f"{table}.{column} is not pruned by a TTL")
        with self.cursor() as cursor:
            cursor.execute(_DELETE_OLDER.format(table=table, column=column),
                           [self.dt(at), limit])
            return int(cursor.rowcount)

    def set_paused(self, name: str, paused: bool, at: datetime) -> None:
        with self.cursor() as cursor:
            cursor.execute(_SET_PAUSED, [name, paused, self.dt(at)])

    # -- finish ----------------------------------------------------------------------------
    def complete_jobs(self, cursor: Any, items: Sequence[tuple[uuid.UUID, str, str | None]],
                      at: Any) -> set[uuid.UUID]:
        if len(items) == 1:
            return super().complete_jobs(cursor, items, at)
        ids = [self.uid(job_id) for job_id, _, _ in items]
        whens = " ".join(["WHEN %s THEN %s"] * len(items))
        sql = _COMPLETE_BATCH.format(results=whens, tokens=whens,
                                     marks=", ".join(["%s"] * len(items)))
        params: list[Any] = [x for (_, _, result), i in zip(items, ids, strict=True)
                             for x in (i, result)]
        params.append(at)
        params.extend(ids)
        params.extend(x for (_, token, _), i in zip(items, ids, strict=True) for x in (i, token))
        cursor.execute(sql, params)
        if cursor.rowcount == len(items):
            return {job_id for job_id, _, _ in items}
        marks = ", ".join(["%s"] * len(items))
        cursor.execute(q.COMPLETED_TOKENS.format(marks=marks), ids)
        landed = {(self.to_uuid(r[0]), r[1]) for r in cursor.fetchall()}
        return {job_id for job_id, token, _ in items if (job_id, token) in landed}

    # -- claim -----------------------------------------------------------------------------
    def claim(self, *, queues: Sequence[str] | None, limit: int, now: datetime,
              worker_id: str, token: str) -> list[Sequence[Any]]:
        where, params = self.ready_filter(queues)
        stamp = self.dt(now)
        return self._lock_and_take(_PICK.format(where=where), [stamp, stamp, *params, limit],
                                   stamp, worker_id, token)

    def claim_job(self, job_id: uuid.UUID, *, now: datetime, worker_id: str,
                  token: str) -> Sequence[Any] | None:
        rows = self._lock_and_take(_PICK_ONE, [self.uid(job_id), False], self.dt(now),
                                   worker_id, token)
        return rows[0] if rows else None

    def _lock_and_take(self, pick: str, params: list[Any], stamp: Any, worker_id: str,
                       token: str) -> list[Sequence[Any]]:
        """Lock and read CLAIM_COLUMNS rows with `pick`, then mark them running for this
        attempt, in one transaction; the rows as the update left them."""
        with transaction.atomic(using=self.alias), self.cursor() as cursor:
            cursor.execute(pick, params)
            rows = cursor.fetchall()
            if not rows:
                return []
            cursor.execute(_TAKE.format(marks=", ".join(["%s"] * len(rows))),
                           [stamp, worker_id, token, False, *(r[0] for r in rows)])
        attempts = CLAIM_COLUMNS.index("attempts")
        claimed: list[Sequence[Any]] = []
        for row in rows:
            row = list(row)
            row[attempts] += 1  # as the update counted it
            claimed.append(row)
        return claimed

    # -- liveness --------------------------------------------------------------------------
    def heartbeat(self, worker_id: str, hostname: str, pid: int, queues: str,
                  concurrency: int, started_at: datetime, now: datetime) -> None:
        with self.cursor() as cursor:
            cursor.execute(_HEARTBEAT, [worker_id, hostname, pid, queues, concurrency,
                                        self.dt(started_at), self.dt(now)])

    def acquire_lease(self, name: str, holder: str, until: datetime, now: datetime) -> bool:
        with self.cursor() as cursor:
            cursor.execute(_RENEW_LEASE, [holder, self.dt(until), name, holder, self.dt(now)])
            if cursor.rowcount == 1:
                return True
        try:
            with self.cursor() as cursor:
                cursor.execute(_INSERT_LEASE, [name, holder, self.dt(until)])
        except IntegrityError as exc:
            if _is_duplicate(exc):
                return False  # held, and not expired, by someone else
            raise
        return True

    # -- throttles -------------------------------------------------------------------------
    def take_rate(self, cursor: Any, key: str, window: int, limit: int) -> bool:
        cursor.execute(_ENSURE_THROTTLE, [key, window])
        cursor.execute(_TAKE_RATE, [window, window, key, window, limit])
        return bool(cursor.rowcount == 1)

    def take_slot(self, key: str, limit: int) -> bool:
        with self.cursor() as cursor:
            cursor.execute(_ENSURE_THROTTLE, [key, 0])
            cursor.execute(_TAKE_SLOT, [key, limit])
            return bool(cursor.rowcount == 1)

    def release_slots(self, keys: Sequence[str]) -> None:
        if keys:
            with self.cursor() as cursor:
                cursor.executemany(_RELEASE_SLOT, [(key,) for key in keys])

    # -- circuit breakers ------------------------------------------------------------------
    def ensure_breaker(self, cursor: Any, task_name: str) -> None:
        cursor.execute(_ENSURE_BREAKER, [task_name])

    def reset_slots(self, prefix: str, counts: dict[str, int]) -> None:
        with self.cursor() as cursor:
            cursor.execute(_SLOT_KEYS, [prefix + "%"])
            for (key,) in cursor.fetchall():
                cursor.execute(_SET_SLOT, [counts.get(key, 0), key])


def server_problem(version: str) -> str | None:
    """Why a server (its VERSION() text) cannot run taskito, or None when it can."""
    found = _VERSION.search(version)
    if found is None:
        return f"taskito cannot tell the version of this MySQL/MariaDB server ({version!r})"
    numbers = tuple(int(n) for n in found.groups())
    if "mariadb" in version.lower():
        if numbers[:2] < MIN_MARIADB:
            return (f"taskito needs MariaDB 10.6 or later (SELECT ... FOR UPDATE SKIP LOCKED); "
                    f"this server is MariaDB {found.group(0)}")
    elif numbers < MIN_MYSQL:
        return (f"taskito needs MySQL 8.0.1 or later (SELECT ... FOR UPDATE SKIP LOCKED); "
                f"this server is MySQL {found.group(0)}")
    return None


def _is_error(exc: Exception, code: int) -> bool:
    args: tuple[Any, ...] = getattr(exc.__cause__ or exc, "args", ())
    return bool(args) and args[0] == code


def _is_duplicate(exc: IntegrityError, index: str | None = None) -> bool:
    if not _is_error(exc, DUPLICATE_KEY):
        return False
    args: tuple[Any, ...] = getattr(exc.__cause__ or exc, "args", ())
    return index is None or index in str(args[1] if len(args) > 1 else "")
