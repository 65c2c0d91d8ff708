"""Soak taskito with a million jobs: does it stay as fast with the table full as empty?

Run from the repository root with the project's virtualenv (not part of CI: a full run takes
several minutes per database):

    .venv/bin/python bench/soak.py [--database-url URL] [--jobs 1000000] [--workers 2]

It makes a fresh database (a SQLite file in a temp dir, or `taskito_soak` on the server the
URL names; dropped afterwards), then:

  1. enqueues --jobs noop jobs with `noop.map()` in batches of --batch, and at every tenth of
     the way times --singles single `noop.delay()` calls (enqueue latency while the table
     grows);
  2. runs ANALYZE on the job table (PostgreSQL, MariaDB), as autovacuum would;
  3. drains them with --workers `taskito_worker --burst` processes, while this process
     samples the claim latency: every --probe-every seconds it claims one job with the
     engine's own claim statement (the one a worker runs) and finishes it, timing the claim;
  4. reports throughput for each tenth of the jobs (from the jobs' completion times: the
     time between the k-th and the (k+1)-th tenth finishing), claim latency percentiles
     per tenth, and the last tenth against the first (target: within 20%);
  5. measures the table and index sizes, purges the completed rows
     (`queue.purge_completed(older_than=0)`, timed), measures again, runs VACUUM (plain
     VACUUM on PostgreSQL: it frees the space for reuse but keeps the file; SQLite's VACUUM
     rewrites the file) and measures a third time.

Options: --database-url URL (PostgreSQL or MariaDB/MySQL server, as bench/run.py), --jobs N
(default 1,000,000), --batch N (jobs per map() call, default 10,000), --singles N (delay()
calls timed at each tenth, default 200), --workers N (default 2), --probe-every S (default
0.05), --json PATH (also write the results as JSON), --keep (keep the temp directory).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import WORKER_TIMEOUT, BenchError, Env, describe  # noqa: E402

SOAK_NAME = "taskito_soak"
TENTHS = 10


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (values need not be sorted)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


# -- 1. enqueue ----------------------------------------------------------------------------
def enqueue(jobs: int, batch: int, singles: int) -> dict[str, Any]:
    from bench.benchapp.tasks import noop

    batch_ms: list[float] = []
    single_ms: list[list[float]] = []
    step = max(1, jobs // TENTHS)
    written = 0
    t_start = time.perf_counter()
    next_mark = 0
    while written < jobs:
        if written >= next_mark:
            samples = []
            for _ in range(singles):
                t0 = time.perf_counter()
                noop.delay()
                samples.append((time.perf_counter() - t0) * 1000)
            single_ms.append(samples)
            next_mark += step
        n = min(batch, jobs - written)
        t0 = time.perf_counter()
        noop.map([()] * n)
        batch_ms.append((time.perf_counter() - t0) * 1000)
        written += n
    elapsed = time.perf_counter() - t_start
    singles_all = [x for s in single_ms for x in s]
    batch_time = sum(batch_ms) / 1000
    return {
        "jobs": written + len(singles_all),
        "wall_s": elapsed,
        "batch_rate": written / batch_time,
        "batch_ms_p50": pct(batch_ms, 0.5), "batch_ms_p99": pct(batch_ms, 0.99),
        "batch_rate_first": batch * 1000 / batch_ms[0] if batch_ms else 0.0,
        "batch_rate_last": batch * 1000 / batch_ms[-1] if batch_ms else 0.0,
        "single_ms_p50": pct(singles_all, 0.5), "single_ms_p99": pct(singles_all, 0.99),
        "single_ms_p50_by_tenth": [pct(s, 0.5) for s in single_ms],
    }


# -- 2. drain ------------------------------------------------------------------------------
class ClaimProbe(threading.Thread):
    """Claims one job now and then with the workers' own statement, timing the claim."""

    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[tuple[float, float]] = []  # (unix time, claim ms)
        self.stop = threading.Event()
        self.empty_streak = 0

    def run(self) -> None:
        from django.db import connection

        from taskito import queue
        from taskito.engine import Engine, Outcome

        engine = Engine(queue)
        worker_id = f"soak-probe:{uuid.uuid4().hex[:6]}"
        try:
            while not self.stop.wait(self.every):
                t0 = time.perf_counter()
                jobs = engine.claim(worker_id=worker_id, limit=1)
                ms = (time.perf_counter() - t0) * 1000
                if not jobs:
                    self.empty_streak += 1
                    if self.empty_streak > 3:
                        return
                    continue
                self.samples.append((time.time(), ms))
                engine.finish([Outcome(job, "complete", 0.0, result="null") for job in jobs])
        finally:
            connection.close()


def drain(env: Env, workers: int, probe_every: float) -> dict[str, Any]:
    from django.db import connection

    connection.close()
    probe = ClaimProbe(probe_every)
    t0 = time.perf_counter()
    procs = [env.start_worker("--burst") for _ in range(workers)]
    probe.start()
    try:
        for proc, log in procs:
            try:
                code = proc.wait(timeout=WORKER_TIMEOUT * 10)
            except Exception:
                proc.kill()
                raise BenchError(f"worker did not finish; see {log}") from None
            if code != 0:
                raise BenchError(f"worker exit {code}:\n{log.read_text()[-2000:]}")
    finally:
        probe.stop.set()
        probe.join(timeout=30)
    return {"wall_s": time.perf_counter() - t0, "probe": probe.samples}


def completion_marks(total: int) -> list[float]:
    """Unix times at which 0, 1/10, ..., 10/10 of the jobs had completed (from completed_at,
    read back in one ordered pass over the column)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT completed_at FROM taskito_job WHERE status = 2 "
                       "ORDER BY completed_at")
        times = [row[0] for row in cursor.fetchall()]
    if len(times) != total:
        raise BenchError(f"{len(times)}/{total} jobs complete after the drain")
    first = _first_started()
    marks = [first]
    for k in range(1, TENTHS + 1):
        marks.append(_ts(times[min(len(times), k * total // TENTHS) - 1]))
    return marks


def _first_started() -> float:
    from django.db.models import Min

    from taskito.models import Job

    return _ts(Job.objects.aggregate(first=Min("started_at"))["first"])


def _ts(value: Any) -> float:
    if isinstance(value, str):  # SQLite through a raw cursor
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(value)
        assert parsed is not None
        value = parsed
    return float(value.timestamp())


# -- 4. sizes and purge ----------------------------------------------------------------------
def sizes() -> dict[str, int]:
    """Bytes of the job table and its indexes (PostgreSQL, MariaDB), or of the database file
    and its free pages (SQLite)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_relation_size('taskito_job'), "
                           "pg_indexes_size('taskito_job'), "
                           "pg_total_relation_size('taskito_job'), "
                           "pg_database_size(current_database())")
            table, indexes, total, database = cursor.fetchone()
            return {"table": table, "indexes": indexes, "table_total": total,
                    "database": database}
        if connection.vendor == "mysql":
            cursor.execute("ANALYZE TABLE taskito_job")
            cursor.fetchall()
            cursor.execute("SELECT data_length, index_length, data_free FROM "
                           "information_schema.tables WHERE table_schema = DATABASE() "
                           "AND table_name = 'taskito_job'")
            table, indexes, free = cursor.fetchone()
            return {"table": table, "indexes": indexes, "free": free}
        cursor.execute("PRAGMA page_size")
        page = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute("PRAGMA freelist_count")
        free = cursor.fetchone()[0]
        return {"database": page * pages, "free": page * free}


def analyze() -> float:
    """Refresh the planner's statistics after the bulk enqueue, as autovacuum would on a
    server that runs it (this machine's PostgreSQL has `autovacuum = off`). Without them
    PostgreSQL takes a million ready rows for a few and has every claim sort the backlog
    (measured here: about 0.6 s a claim, 100 jobs/s)."""
    from django.db import connection

    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE taskito_job")
        elif connection.vendor == "mysql":
            cursor.execute("ANALYZE TABLE taskito_job")
            cursor.fetchall()
    return time.perf_counter() - t0


def vacuum() -> float:
    from django.db import connection

    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM taskito_job")  # autocommit: Django's default
        elif connection.vendor == "mysql":
            cursor.execute("OPTIMIZE TABLE taskito_job")
            cursor.fetchall()
        else:
            cursor.execute("VACUUM")
    return time.perf_counter() - t0


# -- the report ----------------------------------------------------------------------------
def report(info: dict[str, Any], results: dict[str, Any]) -> str:
    e, d = results["enqueue"], results["drain"]
    lines = [f"taskito soak on {info['database']}: {results['jobs']:,} jobs, "
             f"{results['workers']} workers ({info['cpus']} CPUs, Python {info['python']}, "
             f"Django {info['django']}, {info['time']})", ""]
    lines += [
        "enqueue",
        f"  {e['jobs']:,} jobs in {e['wall_s']:.1f} s; map() batches of {results['batch']:,}: "
        f"{e['batch_rate']:,.0f} jobs/s (first batch {e['batch_rate_first']:,.0f}, last "
        f"{e['batch_rate_last']:,.0f}); batch p50 {e['batch_ms_p50']:.0f} ms, "
        f"p99 {e['batch_ms_p99']:.0f} ms",
        f"  single delay(): p50 {e['single_ms_p50']:.2f} ms, p99 {e['single_ms_p99']:.2f} ms; "
        "p50 at each tenth of the fill: "
        + ", ".join(f"{x:.2f}" for x in e["single_ms_p50_by_tenth"]),
        f"  then ANALYZE taskito_job in {results['analyze_s']:.1f} s (see analyze())",
        "", "drain (throughput per tenth from the jobs' completion times; claim latency from "
        "the probe)",
        f"  {'tenth':>5}  {'jobs/s':>9}  {'claim p50 ms':>12}  {'claim p99 ms':>12}  samples",
    ]
    for row in d["tenths"]:
        lines.append(f"  {row['tenth']:>5}  {row['rate']:>9,.0f}  {row['claim_p50']:>12.2f}  "
                     f"{row['claim_p99']:>12.2f}  {row['samples']}")
    lines += [
        f"  overall {d['rate']:,.0f} jobs/s first claim to last completion "
        f"({d['wall_s']:.1f} s wall incl. start-up); claim p50 {d['claim_p50']:.2f} ms, "
        f"p99 {d['claim_p99']:.2f} ms",
        f"  last tenth / first tenth: {d['last_vs_first']:.2f} "
        f"({'within' if abs(1 - d['last_vs_first']) <= 0.2 else 'OUTSIDE'} 20%)",
        "", "purge and sizes (bytes)",
        f"  after the drain:   {results['sizes_full']}",
        f"  purge_completed(older_than=0): {results['purged']:,} rows in "
        f"{results['purge_s']:.1f} s",
        f"  after the purge:   {results['sizes_purged']}",
        f"  VACUUM in {results['vacuum_s']:.1f} s",
        f"  after VACUUM:      {results['sizes_vacuumed']}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/soak.py",
                                     description="Soak taskito with a million jobs.")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--probe-every", type=float, default=0.05)
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    for name in ("jobs", "batch", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.jobs < TENTHS:
        parser.error(f"--jobs must be >= {TENTHS}")
    if args.singles < 0 or args.probe_every <= 0:
        parser.error("--singles must be >= 0 and --probe-every > 0")
    return args


def soak(args: argparse.Namespace, env: Env) -> dict[str, Any]:
    from taskito import queue

    results: dict[str, Any] = {"workers": args.workers, "batch": args.batch}
    results["enqueue"] = enqueue(args.jobs, args.batch, args.singles)
    results["analyze_s"] = analyze()
    total = results["enqueue"]["jobs"]
    results["jobs"] = total
    drained = drain(env, args.workers, args.probe_every)
    marks = completion_marks(total)
    probe = drained.pop("probe")
    tenths = []
    for k in range(TENTHS):
        span = marks[k + 1] - marks[k]
        claims = [ms for at, ms in probe if marks[k] <= at < marks[k + 1]]
        tenths.append({"tenth": k + 1, "rate": (total / TENTHS) / span if span > 0 else 0.0,
                       "claim_p50": pct(claims, 0.5), "claim_p99": pct(claims, 0.99),
                       "samples": len(claims)})
    claims_all = [ms for _, ms in probe]
    results["drain"] = {
        **drained, "tenths": tenths,
        "rate": total / (marks[-1] - marks[0]),
        "claim_p50": pct(claims_all, 0.5), "claim_p99": pct(claims_all, 0.99),
        "last_vs_first": tenths[-1]["rate"] / tenths[0]["rate"] if tenths[0]["rate"] else 0.0,
    }
    results["sizes_full"] = sizes()
    t0 = time.perf_counter()
    results["purged"] = queue.purge_completed(older_than=0)
    results["purge_s"] = time.perf_counter() - t0
    results["sizes_purged"] = sizes()
    results["vacuum_s"] = vacuum()
    results["sizes_vacuumed"] = sizes()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="taskito-soak-"))
    env = Env(workdir, args.database_url, name=SOAK_NAME)
    info: dict[str, Any] = {}
    try:
        env.setup()
        info = describe(env)
        results = soak(args, env)
    except BenchError as exc:
        print(f"soak: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        env.teardown()
        if args.keep:
            print(f"soak: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report(info, results))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({**info, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
