"""The SQL text every database shares, one named statement each.

Status values come from `JobStatus`; a statement that changes a job's status declares the
moves it makes (`from -> to`), and tests/db checks them against `states.TRANSITIONS` and
against the text itself. Vendor modules register their own versions of what differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskito.states import JobStatus

JOB = "taskito_job"
DEPENDENCY = "taskito_job_dependency"
QUEUE_STATE = "taskito_queue_state"
DEAD_LETTER = "taskito_dead_letter"
JOB_ERROR = "taskito_job_error"
TASK_LOG = "taskito_task_log"
METRIC = "taskito_task_metric"
REPLAY = "taskito_replay_history"
WORKER = "taskito_worker"
LEASE = "taskito_lease"
THROTTLE = "taskito_throttle"
PERIODIC = "taskito_periodic_task"
WORKFLOW = "taskito_workflow"
BREAKER = "taskito_circuit_breaker"

PENDING = int(JobStatus.PENDING)
RUNNING = int(JobStatus.RUNNING)
COMPLETE = int(JobStatus.COMPLETE)
DEAD = int(JobStatus.DEAD)
CANCELLED = int(JobStatus.CANCELLED)

INSERT_COLUMNS = (
    "id", "queue", "task_name", "args", "kwargs", "status", "priority", "progress", "attempts",
    "retry_count", "max_retries", "timeout_ms", "soft_timeout_ms", "created_at",
    "scheduled_at", "expires_at", "result_ttl", "unique_key", "metadata", "cancel_requested",
    "has_dependencies",
)
METRIC_COLUMNS = ("job_id", "task_name", "queue", "succeeded", "wall_time_ms", "recorded_at")
CLAIM_COLUMNS = (
    "id", "task_name", "queue", "args", "kwargs", "priority", "scheduled_at", "attempts",
    "retry_count", "max_retries", "timeout_ms", "soft_timeout_ms", "workflow_id", "workflow_step",
)
WORKFLOW_JOB_COLUMNS = (*INSERT_COLUMNS, "workflow_id", "workflow_step", "workflow_waiting")

Move = tuple[JobStatus, JobStatus]


@dataclass(frozen=True, slots=True)
class Statement:
    """One named SQL statement and the status moves it makes (none for most)."""

    name: str
    sql: str
    moves: tuple[Move, ...] = ()


#: every registered statement, by "<vendor>.<name>" ("base" for the shared ones)
STATEMENTS: dict[str, Statement] = {}


def stmt(vendor: str, name: str, sql: str, *moves: Move) -> str:
    """Register a statement (for the transition test) and return its text."""
    STATEMENTS[f"{vendor}.{name}"] = Statement(name, sql, tuple(moves))
    return sql


_P, _R, _C, _D, _X = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETE,
                      JobStatus.DEAD, JobStatus.CANCELLED)


def _b(name: str, sql: str, *moves: Move) -> str:
    return stmt("base", name, sql, *moves)


# -- enqueue -------------------------------------------------------------------------------
INSERT_JOB = _b("insert_job", f"INSERT INTO {JOB} ({', '.join(INSERT_COLUMNS)}) "
                              f"VALUES ({', '.join(['%s'] * len(INSERT_COLUMNS))})")
INSERT_UNIQUE_JOB = _b("insert_unique_job", INSERT_JOB + " ON CONFLICT DO NOTHING RETURNING id")
ACTIVE_UNIQUE = _b("active_unique", f"SELECT id FROM {JOB} WHERE unique_key = %s "
                                    f"AND status IN ({PENDING}, {RUNNING})")
INSERT_DEPENDENCY = _b("insert_dependency",
                       f"INSERT INTO {DEPENDENCY} (job_id, depends_on_id) VALUES (%s, %s)")
#: a batch of unique jobs in one statement; "{values}" holds one "(%s, ...)" group per row.
#: Rows whose key an active job holds are skipped; the ids of the rows written come back.
INSERT_UNIQUE_JOBS = _b("insert_unique_jobs", (
    f"INSERT INTO {JOB} ({', '.join(INSERT_COLUMNS)}) VALUES {{values}} "
    f"ON CONFLICT DO NOTHING RETURNING id"))
#: "{marks}": one placeholder per key
ACTIVE_UNIQUE_MANY = _b("active_unique_many", (
    f"SELECT unique_key, id FROM {JOB} WHERE unique_key IN ({{marks}}) "
    f"AND status IN ({PENDING}, {RUNNING})"))
DELETE_DEAD_LETTER = _b("delete_dead_letter", f"DELETE FROM {DEAD_LETTER} WHERE id = %s")

# -- operator verbs ------------------------------------------------------------------------
CANCEL_PENDING = _b("cancel_pending", (
    f"UPDATE {JOB} SET status = {CANCELLED}, completed_at = %s, error = %s "
    f"WHERE id = %s AND status = {PENDING}"), (_P, _X))
PENDING_DEPENDENTS = _b("pending_dependents", (
    f"SELECT d.job_id FROM {DEPENDENCY} d JOIN {JOB} j ON j.id = d.job_id "
    f"WHERE d.depends_on_id IN ({{marks}}) AND j.status = {PENDING}"))
EXPIRE_DUE = _b("expire_due", (
    f"UPDATE {JOB} SET status = {CANCELLED}, error = %s, completed_at = %s "
    f"WHERE status = {PENDING} AND expires_at IS NOT NULL AND expires_at <= %s RETURNING id"),
    (_P, _X))
#: children first, the jobs last; "{marks}" is filled with one placeholder per id
DELETE_JOBS = tuple(_b(f"delete_jobs_{i}", sql) for i, sql in enumerate((
    f"DELETE FROM {JOB_ERROR} WHERE job_id IN ({{marks}})",
    f"DELETE FROM {TASK_LOG} WHERE job_id IN ({{marks}})",
    f"DELETE FROM {METRIC} WHERE job_id IN ({{marks}})",
    f"DELETE FROM {DEPENDENCY} WHERE job_id IN ({{marks}}) OR depends_on_id IN ({{marks}})",
    f"DELETE FROM {REPLAY} WHERE original_job_id IN ({{marks}}) "
    f"OR replay_job_id IN ({{marks}})",
    f"DELETE FROM {JOB} WHERE id IN ({{marks}})",
)))
SET_PAUSED = _b("set_paused", (
    f"INSERT INTO {QUEUE_STATE} (name, paused, updated_at) VALUES (%s, %s, %s) "
    f"ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, "
    f"updated_at = excluded.updated_at"))
#: "{table}" / "{column}": one of the tables a queue-wide TTL prunes, and its time column
DELETE_OLDER = _b("delete_older", (
    "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < %s LIMIT %s)"))
TTL_PRUNED = ((DEAD_LETTER, "failed_at"), (JOB_ERROR, "failed_at"), (TASK_LOG, "logged_at"),
              (METRIC, "recorded_at"))

#: whether any job is ready to claim (a lock-free look, for watchers that poll);
#: "{where}": Dialect.ready_filter
ANY_READY = _b("any_ready", f"SELECT 1 FROM {JOB} j WHERE {{where}} LIMIT 1")

# -- running one job here (test mode, taskito.testing.run_jobs) -----------------------------
# Claims one pending job by id, whatever its due time, once its dependencies are complete.
CLAIM_JOB = _b("claim_job", (
    f"UPDATE {JOB} SET status = {RUNNING}, started_at = %s, worker_id = %s, claim_token = %s, "
    f"attempts = attempts + 1, cancel_requested = %s WHERE id = %s AND status = {PENDING} "
    f"AND (has_dependencies = %s OR NOT EXISTS (SELECT 1 FROM {DEPENDENCY} d JOIN {JOB} p "
    f"ON p.id = d.depends_on_id WHERE d.job_id = {JOB}.id AND p.status <> {COMPLETE})) "
    f"RETURNING {', '.join(CLAIM_COLUMNS)}"), (_P, _R))

# -- the worker's writes -------------------------------------------------------------------
COMPLETE_JOB = _b("complete_job", (
    f"UPDATE {JOB} SET status = {COMPLETE}, result = %s, completed_at = %s, progress = 100 "
    f"WHERE id = %s AND claim_token = %s AND status = {RUNNING}"), (_R, _C))
COMPLETED_TOKENS = _b("completed_tokens", (
    f"SELECT id, claim_token FROM {JOB} WHERE status = {COMPLETE} AND id IN ({{marks}})"))
RETRY_JOB = _b("retry_job", (
    f"UPDATE {JOB} SET status = {PENDING}, scheduled_at = %s, retry_count = retry_count + 1, "
    f"error = %s, worker_id = NULL, claim_token = NULL "
    f"WHERE id = %s AND claim_token = %s AND status = {RUNNING}"), (_R, _P))
END_JOB = _b("end_job", (
    f"UPDATE {JOB} SET status = %s, error = %s, completed_at = %s "
    f"WHERE id = %s AND claim_token = %s AND status = {RUNNING}"), (_R, _D), (_R, _X))
INSERT_DEAD_LETTER = _b("insert_dead_letter", (
    f"INSERT INTO {DEAD_LETTER} (id, original_job_id, queue, task_name, args, kwargs, "
    f"priority, max_retries, timeout_ms, error, retry_count, failed_at, metadata) "
    f"SELECT %s, id, queue, task_name, args, kwargs, priority, max_retries, timeout_ms, error, "
    f"retry_count, %s, metadata FROM {JOB} WHERE id = %s"))
INSERT_ERROR = _b("insert_error", (f"INSERT INTO {JOB_ERROR} (job_id, attempt, error, "
                                   f"traceback, failed_at) VALUES (%s, %s, %s, %s, %s)"))
INSERT_METRIC = _b("insert_metric", (f"INSERT INTO {METRIC} ({', '.join(METRIC_COLUMNS)}) "
                                     f"VALUES (%s, %s, %s, %s, %s, %s)"))
SET_PROGRESS = _b("set_progress", (
    f"UPDATE {JOB} SET progress = %s{{partial}} WHERE id = %s AND claim_token = %s "
    f"AND status = {RUNNING}"))
REQUEUE = _b("requeue", (
    f"UPDATE {JOB} SET status = {PENDING}, worker_id = NULL, claim_token = NULL "
    f"WHERE id = %s AND claim_token = %s AND status = {RUNNING}"), (_R, _P))
DEFER = _b("defer", (
    f"UPDATE {JOB} SET status = {PENDING}, worker_id = NULL, claim_token = NULL, "
    f"scheduled_at = %s, attempts = attempts - 1 "
    f"WHERE id = %s AND claim_token = %s AND status = {RUNNING}"), (_R, _P))
EXPIRED_BY_OWN_TTL = _b("expired_by_own_ttl", (
    f"SELECT id FROM {JOB} WHERE status IN ({{marks}}) AND result_ttl IS NOT NULL "
    f"AND completed_at IS NOT NULL AND {{ttl_end}} < %s LIMIT %s"))

# -- workflows (chain, group, chord) ---------------------------------------------------------
# All portable (no RETURNING, no upsert). A waiting step is a pending job scheduled at the
# far-future WAITING time, so the claim never sees it; `workflow_waiting` counts its parents
# that have not completed, and the UPDATE that lowers it also locks the row, so two workers
# finishing the last two parents at once cannot both miss (or both make) the release.
INSERT_WORKFLOW = _b("insert_workflow", (
    f"INSERT INTO {WORKFLOW} (id, status, graph, waiting, created_at, finished_at) "
    f"VALUES (%s, 0, %s, %s, %s, NULL)"))
INSERT_WORKFLOW_JOB = _b("insert_workflow_job", (
    f"INSERT INTO {JOB} ({', '.join(WORKFLOW_JOB_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(WORKFLOW_JOB_COLUMNS))})"))
WORKFLOW_GRAPH = _b("workflow_graph", f"SELECT graph FROM {WORKFLOW} WHERE id = %s")
STEP_PARENTS_DONE = _b("step_parents_done", (
    f"UPDATE {JOB} SET workflow_waiting = workflow_waiting - %s WHERE workflow_id = %s "
    f"AND workflow_step = %s AND status = {PENDING} AND workflow_waiting >= %s"))
READY_STEPS = _b("ready_steps", (
    f"SELECT id, workflow_step, args FROM {JOB} WHERE workflow_id = %s "
    f"AND status = {PENDING} AND workflow_waiting = 0 AND scheduled_at >= %s "
    f"AND workflow_step IN ({{marks}})"))
STEP_RESULTS = _b("step_results", (
    f"SELECT workflow_step, result FROM {JOB} WHERE workflow_id = %s "
    f"AND status = {COMPLETE} AND workflow_step IN ({{marks}})"))
RELEASE_STEP = _b("release_step", (
    f"UPDATE {JOB} SET args = %s, scheduled_at = %s WHERE id = %s AND status = {PENDING}"))
PENDING_STEPS = _b("pending_steps", (
    f"SELECT id FROM {JOB} WHERE workflow_id = %s AND status = {PENDING} "
    f"AND workflow_step IN ({{marks}})"))
# finished_at before status and waiting: MySQL assigns left to right with the new values.
EXITS_DONE = _b("exits_done", (
    f"UPDATE {WORKFLOW} SET finished_at = CASE WHEN waiting <= %s AND status = 0 THEN %s "
    f"ELSE finished_at END, status = CASE WHEN waiting <= %s AND status = 0 THEN 2 "
    f"ELSE status END, waiting = waiting - %s WHERE id = %s"))
END_WORKFLOW = _b("end_workflow", (
    f"UPDATE {WORKFLOW} SET finished_at = %s, status = %s WHERE id = %s AND status = 0"))
REOPEN_WORKFLOW = _b("reopen_workflow", (
    f"UPDATE {WORKFLOW} SET finished_at = NULL, status = 0 WHERE id = %s AND status <> 2"))
SET_STEP = _b("set_step", (
    f"UPDATE {JOB} SET workflow_id = %s, workflow_step = %s, workflow_waiting = %s "
    f"WHERE id = %s"))

# -- liveness ------------------------------------------------------------------------------
HEARTBEAT = _b("heartbeat", (
    f"INSERT INTO {WORKER} (worker_id, hostname, pid, queues, concurrency, started_at, "
    f"last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s) "
    f"ON CONFLICT (worker_id) DO UPDATE SET last_seen = excluded.last_seen"))
FORGET_WORKER = _b("forget_worker", f"DELETE FROM {WORKER} WHERE worker_id = %s")
STALE_WORKERS = _b("stale_workers", f"SELECT worker_id FROM {WORKER} WHERE last_seen < %s")
# Running jobs of a stale worker, or of a worker with no heartbeat row at all that started
# before the cutoff (its row was removed, or it never wrote one).
LOST_JOBS = _b("lost_jobs", (
    f"SELECT {', '.join(f'j.{c}' for c in CLAIM_COLUMNS)}, j.claim_token, j.worker_id "
    f"FROM {JOB} j WHERE j.status = {RUNNING} "
    f"AND (j.worker_id IN (SELECT worker_id FROM {WORKER} WHERE last_seen < %s) "
    f"OR (j.started_at < %s AND NOT EXISTS (SELECT 1 FROM {WORKER} w "
    f"WHERE w.worker_id = j.worker_id)))"))
DELETE_STALE_WORKERS = _b("delete_stale_workers", (
    f"DELETE FROM {WORKER} WHERE last_seen < %s AND worker_id IN ({{marks}})"))
ACQUIRE_LEASE = _b("acquire_lease", (
    f"INSERT INTO {LEASE} (name, holder, expires_at) VALUES (%s, %s, %s) "
    f"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
    f"expires_at = excluded.expires_at WHERE {LEASE}.holder = excluded.holder "
    f"OR {LEASE}.expires_at < %s RETURNING holder"))
RELEASE_LEASE = _b("release_lease", f"DELETE FROM {LEASE} WHERE name = %s AND holder = %s")

# -- periodic tasks ------------------------------------------------------------------------
ADVANCE_PERIODIC = _b("advance_periodic", (
    f"UPDATE {PERIODIC} SET next_run_at = %s, last_run_at = %s "
    f"WHERE id = %s AND next_run_at = %s AND enabled = %s"))

# -- throttles -----------------------------------------------------------------------------
TAKE_RATE = _b("take_rate", (
    f"INSERT INTO {THROTTLE} (key, window_no, count) VALUES (%s, %s, 1) "
    f"ON CONFLICT (key) DO UPDATE SET window_no = excluded.window_no, count = "
    f"CASE WHEN {THROTTLE}.window_no = excluded.window_no THEN {THROTTLE}.count + 1 ELSE 1 "
    f"END WHERE {THROTTLE}.window_no <> excluded.window_no OR {THROTTLE}.count < %s "
    f"RETURNING count"))
TAKE_SLOT = _b("take_slot", (
    f"INSERT INTO {THROTTLE} (key, window_no, count) VALUES (%s, 0, 1) "
    f"ON CONFLICT (key) DO UPDATE SET count = {THROTTLE}.count + 1 "
    f"WHERE {THROTTLE}.count < %s RETURNING count"))
RELEASE_SLOT = _b("release_slot", (f"UPDATE {THROTTLE} SET count = count - 1 "
                                   f"WHERE key = %s AND count > 0"))
SLOT_KEYS = _b("slot_keys", f"SELECT key FROM {THROTTLE} WHERE key LIKE %s")
SET_SLOT = _b("set_slot", f"UPDATE {THROTTLE} SET count = %s WHERE key = %s")

# -- the operator's overview (Queue.overview): one fixed set of reads ------------------------
#: pending jobs per queue and the due time of the longest-waiting ready one, from the partial
#: "ready" index (a delayed job or a waiting workflow step is not due, so it is not waiting)
OVERVIEW_PENDING = _b("overview_pending", (
    f"SELECT queue, COUNT(*), MIN(CASE WHEN scheduled_at <= %s THEN scheduled_at END) "
    f"FROM {JOB} WHERE status = {PENDING} GROUP BY queue"))
#: every other status, from the partial (status, queue) index
OVERVIEW_STATUSES = _b("overview_statuses", (
    f"SELECT queue, status, COUNT(*) FROM {JOB} WHERE status <> {PENDING} "
    f"GROUP BY queue, status"))
OVERVIEW_QUEUE_STATES = _b("overview_queue_states", f"SELECT name, paused FROM {QUEUE_STATE}")
#: heartbeats with the running jobs each worker holds, newest heartbeat first
OVERVIEW_WORKERS = _b("overview_workers", (
    f"SELECT w.worker_id, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, "
    f"w.last_seen, COALESCE(b.n, 0) FROM {WORKER} w LEFT JOIN (SELECT worker_id, "
    f"COUNT(*) AS n FROM {JOB} WHERE status = {RUNNING} GROUP BY worker_id) b "
    f"ON b.worker_id = w.worker_id ORDER BY w.last_seen DESC, w.worker_id"))
OVERVIEW_DEAD_LETTERS = _b("overview_dead_letters", f"SELECT COUNT(*) FROM {DEAD_LETTER}")
#: finished runs per queue and minute in [start, end); "{minute}": the dialect's expression
#: for a row's minute since the Unix epoch (an integer)
OVERVIEW_THROUGHPUT = _b("overview_throughput", (
    f"SELECT queue, {{minute}}, COUNT(*), SUM(CASE WHEN succeeded THEN 1 ELSE 0 END) "
    f"FROM {METRIC} WHERE recorded_at >= %s AND recorded_at < %s "
    f"GROUP BY queue, {{minute}}"))
# -- circuit breakers ------------------------------------------------------------------------
# States: 0 closed, 1 open, 2 half-open (states.BreakerState). Each move is one conditional
# UPDATE of the task's row: concurrent workers serialise on the row lock, and only the one
# whose condition still holds moves it (exactly one probe, one opening).
CLOSED, OPEN, HALF_OPEN = 0, 1, 2
ENSURE_BREAKER = _b("ensure_breaker", (
    f"INSERT INTO {BREAKER} (task_name, state, failure_count) VALUES (%s, {CLOSED}, 0) "
    f"ON CONFLICT (task_name) DO NOTHING"))
# A new window starts with the first failure after the last one ran out. MySQL assigns left
# to right with the new values: failure_count comes first, and neither reads the other.
COUNT_BREAKER_FAILURES = _b("count_breaker_failures", (
    f"UPDATE {BREAKER} SET failure_count = CASE WHEN window_start IS NULL "
    f"OR window_start <= %s THEN %s ELSE failure_count + %s END, window_start = CASE "
    f"WHEN window_start IS NULL OR window_start <= %s THEN %s ELSE window_start END "
    f"WHERE task_name = %s AND state = {CLOSED}"))
OPEN_BREAKER = _b("open_breaker", (
    f"UPDATE {BREAKER} SET state = {OPEN}, opened_at = %s, probe_job_id = NULL, "
    f"probe_at = NULL WHERE task_name = %s AND state = {CLOSED} AND failure_count >= %s"))
# The probe's outcome: only the probe's own attempt moves a half-open breaker.
REOPEN_BREAKER = _b("reopen_breaker", (
    f"UPDATE {BREAKER} SET state = {OPEN}, opened_at = %s, probe_job_id = NULL, "
    f"probe_at = NULL WHERE task_name = %s AND state = {HALF_OPEN} AND probe_job_id = %s"))
CLOSE_BREAKER = _b("close_breaker", (
    f"UPDATE {BREAKER} SET state = {CLOSED}, failure_count = 0, window_start = NULL, "
    f"opened_at = NULL, probe_job_id = NULL, probe_at = NULL "
    f"WHERE task_name = %s AND state = {HALF_OPEN} AND probe_job_id = %s"))
# A job becomes the probe of an open breaker whose cooldown has passed; it stays the probe
# when it is claimed again (a throttle or a drain put it back), and a probe that has not
# reported back within another cooldown is given up for a new one.
TAKE_PROBE = _b("take_probe", (
    f"UPDATE {BREAKER} SET state = {HALF_OPEN}, probe_job_id = %s, probe_at = %s "
    f"WHERE task_name = %s AND ((state = {OPEN} AND opened_at <= %s) OR "
    f"(state = {HALF_OPEN} AND (probe_job_id = %s OR probe_at <= %s)))"))

# -- set-up checks -------------------------------------------------------------------------
PROBE_TABLES = _b("probe_tables", f"SELECT 1 FROM {JOB} WHERE 1 = 0")
