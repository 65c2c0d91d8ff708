"""Benchmark taskito's hot path: enqueue rate, drain rate and pick-up latency.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/run.py [options]

It makes a fresh database (a SQLite file in a temp dir, or a `taskito_bench` database on a
PostgreSQL or MariaDB/MySQL server), runs `migrate`, then measures:

  batch enqueue    N noop jobs with one `noop.map(...)` call               -> jobs/s
  single enqueue   M `noop.delay()` calls, one transaction each            -> jobs/s
  processing       N staged noop jobs drained by `taskito_worker --burst` subprocesses
                   (one on SQLite, two on a server; default concurrency) -> jobs/s,
                   (a) wall clock from process start to exit, (b) from the first claim
                   to the last completion (min(started_at) to max(completed_at))
  chord            a chord of --chord-jobs noop members and a body, against map() of the
                   same number of noop jobs, each drained by one `--burst` worker: first
                   claim to last completion -> jobs/s, and chord / map (target >= 0.5)
  async            (--only async) 1,000 `async def` jobs each awaiting asyncio.sleep(0.1),
                   one `--burst` worker with default settings: seconds from the first claim
                   to the last completion (target <= 2.5 s); and --batch-jobs async noop
                   jobs against as many sync noop jobs, same worker: async / sync jobs/s
                   (target >= 0.7)
  latency          with one worker process running: `noop.delay().result(timeout=10)`,
                   K samples -> p50 / p99 in ms

Each throughput figure is the median of --repeat runs, each on an empty job table after a
small warm-up; the table shows measured vs target and PASS / SHORT.

Options:
  --database-url URL   run on PostgreSQL or MariaDB/MySQL: URL names the server (and a database
                       to connect to for CREATE/DROP DATABASE, e.g.
                       postgres://postgres@127.0.0.1:5432/postgres or
                       mysql://root@127.0.0.1:3306/test); the benchmark creates `taskito_bench`
                       there and drops it afterwards
  --repeat N           runs per throughput figure, median reported (default 3)
  --batch-jobs N       jobs per batch-enqueue and processing run (default 10000)
  --single-jobs N      delay() calls per single-enqueue run (default 2000)
  --samples N          latency samples (default 100)
  --workers N          worker processes for the processing figure (default 1 on SQLite,
                       2 on a server, as the issues' targets assume)
  --idle-samples N     also measure N round trips each after --idle-gap seconds without work
                       (informational, no target; default 0)
  --idle-gap S         idle time before each of those samples (default 1.5)
  --chord-jobs N       members of the chord benchmark's chord (default 1000)
  --only NAMES         comma-separated subset of: batch,single,processing,latency,chord,async
                       (chord and async run only when named)
  --async-jobs N       jobs of the async sleep benchmark (default 1000)
  --json PATH          also write the results as JSON to PATH
  --keep               keep the temp directory (SQLite file, worker logs) and print its path
  --strict             exit 1 when any figure is SHORT of its target

Exit status: 0 (1 with --strict and a SHORT figure, 2 when a run fails outright).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
#: TASKITO_BENCH_PG_NAME: another name, so that two runs on one server do not collide
PG_NAME = os.environ.get("TASKITO_BENCH_PG_NAME", "taskito_bench")
WORKER_TIMEOUT = 300.0
#: targets from the issues: SQLite (one worker), PostgreSQL and MariaDB/MySQL (two workers);
#: "span" is processing from the first claim to the last completion (issue 16's figures for
#: SQLite and PostgreSQL: claim -> done, single enqueue and the round trip's percentiles)
TARGETS: dict[str, dict[str, float | None]] = {
    "sqlite": {"batch": 60_000, "single": 15_000, "processing": 5_000, "span": 25_000,
               "p50": 1.5, "p99": 5.0},
    "postgresql": {"batch": 30_000, "single": 3_000, "processing": 3_000, "span": 15_000,
                   "p50": 2.5, "p99": 8.0},
    "mysql": {"batch": 20_000, "single": None, "processing": 3_000, "span": 3_000, "p50": 10.0,
              "p99": None},
}


def target(name: str) -> float | None:
    from django.db import connection

    return TARGETS[connection.vendor][name]


@dataclass
class Figure:
    """One measured number and its target."""

    name: str
    unit: str
    value: float
    target: float | None
    higher_is_better: bool = True
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """None for an informational figure (no target)."""
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


class BenchError(RuntimeError):
    pass


# -- the environment ---------------------------------------------------------------------
class Env:
    """The database and the worker subprocesses of one benchmark run."""

    def __init__(self, workdir: Path, database_url: str | None, name: str = PG_NAME) -> None:
        self.workdir = workdir
        self.database_url = database_url
        #: the server database made for the run (bench/soak.py uses its own)
        self.name = name
        self.vars = {"DJANGO_SETTINGS_MODULE": "bench.settings",
                     "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        if database_url:
            self.vars.update(BENCH_DATABASE_URL=database_url, BENCH_PG_NAME=name)
        else:
            self.vars["BENCH_DB_PATH"] = str(workdir / "bench.sqlite3")
        self.workers = 0

    def setup(self) -> None:
        os.environ.update(self.vars)
        if self.mysql:
            self._mysql(f"DROP DATABASE IF EXISTS {self.name}",
                        f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4")
        elif self.database_url:
            self._pg(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)",
                     f"CREATE DATABASE {self.name}")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)

    def teardown(self) -> None:
        from django.db import connections

        connections.close_all()
        if self.mysql:
            self._mysql(f"DROP DATABASE IF EXISTS {self.name}")
        elif self.database_url:
            self._pg(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    @property
    def mysql(self) -> bool:
        return bool(self.database_url) and urlparse(self.database_url).scheme in ("mysql",
                                                                                   "mariadb")

    def _mysql(self, *statements: str) -> None:
        import MySQLdb

        assert self.database_url is not None
        url = urlparse(self.database_url)
        conn = MySQLdb.connect(host=url.hostname or "127.0.0.1", port=url.port or 3306,
                               user=url.username or "root", password=url.password or "")
        try:
            with conn.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
        finally:
            conn.close()

    def _pg(self, *statements: str) -> None:
        import psycopg

        assert self.database_url is not None
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)

    def start_worker(self, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        self.workers += 1
        log = self.workdir / f"worker-{self.workers}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "django", "taskito_worker", *args],
                                    cwd=ROOT, env={**os.environ, **self.vars}, stdout=fh,
                                    stderr=subprocess.STDOUT)
        return proc, log


def clear_jobs() -> None:
    """Empty the job tables, so that every run starts from the same state."""
    from django.db import connection

    tables = ("taskito_task_metric", "taskito_job_error", "taskito_task_log",
              "taskito_job_dependency", "taskito_replay_history", "taskito_dead_letter",
              "taskito_job", "taskito_workflow")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # DELETE would leave every row dead until autovacuum: later runs would measure
            # scans over them, not taskito.
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
        elif connection.vendor == "mysql":
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")  # TRUNCATE refuses referenced tables
            for table in tables:
                cursor.execute(f"TRUNCATE {table}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
    connection.close()


def count_complete() -> int:
    from taskito.models import Job

    return Job.objects.filter(status=2).count()


def median_of(repeat: int, run: Callable[[], float]) -> tuple[float, list[float]]:
    runs = [run() for _ in range(repeat)]
    return statistics.median(runs), runs


# -- the measurements --------------------------------------------------------------------
def bench_batch(n: int, repeat: int) -> Figure:
    from bench.benchapp.tasks import noop

    def run() -> float:
        clear_jobs()
        noop.map([()] * 10)  # warm-up: connection, pragmas, statement cache
        t0 = time.perf_counter()
        jobs = noop.map([()] * n)
        elapsed = time.perf_counter() - t0
        assert len(jobs) == n
        return n / elapsed

    value, runs = median_of(repeat, run)
    return Figure(f"batch enqueue ({n:,} x noop.map)", "jobs/s", value, target("batch"),
                  runs=runs)


def bench_single(n: int, repeat: int) -> Figure:
    from bench.benchapp.tasks import noop

    def run() -> float:
        clear_jobs()
        noop.delay()  # warm-up
        t0 = time.perf_counter()
        for _ in range(n):
            noop.delay()
        return n / (time.perf_counter() - t0)

    value, runs = median_of(repeat, run)
    return Figure(f"single enqueue ({n:,} x noop.delay)", "jobs/s", value, target("single"),
                  runs=runs)


def bench_processing(env: Env, n: int, repeat: int, workers: int) -> list[Figure]:
    from django.db.models import Max, Min

    from bench.benchapp.tasks import noop
    from taskito.models import Job

    walls: list[float] = []
    spans: list[float] = []
    startups: list[float] = []
    for _ in range(repeat):
        clear_jobs()
        noop.map([()] * n)
        from django.db import connection

        connection.close()
        wall0, t0 = time.time(), time.perf_counter()
        procs = [env.start_worker("--burst") for _ in range(workers)]
        for proc, log in procs:
            try:
                code = proc.wait(timeout=WORKER_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise BenchError(
                    f"worker did not finish {n} jobs in {WORKER_TIMEOUT} s; see {log}") from None
            if code != 0:
                raise BenchError(f"worker exit {code}:\n{log.read_text()[-2000:]}")
        wall = time.perf_counter() - t0
        done = count_complete()
        if done != n:
            raise BenchError(f"{done}/{n} jobs complete")
        agg = Job.objects.aggregate(first=Min("started_at"), last=Max("completed_at"))
        span = (agg["last"] - agg["first"]).total_seconds()
        walls.append(n / wall)
        spans.append(n / span)
        startups.append((agg["first"].timestamp() - wall0) * 1000)
    note = f"start-up to first claim ~{statistics.median(startups):.0f} ms"
    return [
        Figure(f"processing ({n:,} jobs, {workers} worker{'s' if workers > 1 else ''}, "
               f"incl. start-up)", "jobs/s", statistics.median(walls), target("processing"),
               runs=walls, note=note),
        Figure(f"processing ({n:,} jobs, first claim to last completion)", "jobs/s",
               statistics.median(spans), target("span"), runs=spans),
    ]


def _drain_span(env: Env, stage: Callable[[], None], n: int) -> float:
    """Stage jobs, drain them with one --burst worker; jobs/s from the first claim to the
    last completion."""
    from django.db import connection
    from django.db.models import Max, Min

    from taskito.models import Job

    clear_jobs()
    stage()
    connection.close()
    proc, log = env.start_worker("--burst")
    try:
        code = proc.wait(timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise BenchError(f"worker did not finish in {WORKER_TIMEOUT} s; see {log}") from None
    if code != 0:
        raise BenchError(f"worker exit {code}:\n{log.read_text()[-2000:]}")
    if count_complete() != n:
        raise BenchError(f"{count_complete()}/{n} jobs complete")
    agg = Job.objects.aggregate(first=Min("started_at"), last=Max("completed_at"))
    return n / (agg["last"] - agg["first"]).total_seconds()


def bench_chord(env: Env, n: int, repeat: int) -> list[Figure]:
    from bench.benchapp.tasks import collect, noop
    from taskito import chord

    def stage_chord() -> None:
        flow = chord([noop.si() for _ in range(n)], collect.s()).apply_async()
        assert flow.id

    chords: list[float] = []
    maps: list[float] = []
    for _ in range(repeat):  # interleaved, so that both see the same machine
        maps.append(_drain_span(env, lambda: noop.map([()] * n) and None, n))
        chords.append(_drain_span(env, stage_chord, n + 1))
    ratio = statistics.median(chords) / statistics.median(maps)
    return [
        Figure(f"map processing ({n:,} jobs, first claim to last completion)", "jobs/s",
               statistics.median(maps), None, runs=maps),
        Figure(f"chord processing ({n:,} members + body, same)", "jobs/s",
               statistics.median(chords), None, runs=chords),
        Figure("chord / map processing", "x", ratio, 0.5,
               note="the issue asks for a chord within 2x of map"),
    ]


def bench_async(env: Env, sleepers: int, n: int, repeat: int) -> list[Figure]:
    from bench.benchapp.tasks import async_noop, async_sleep, noop

    spans = [sleepers / _drain_span(env, lambda: async_sleep.map([(0.1,)] * sleepers)
                                    and None, sleepers) for _ in range(repeat)]
    sync_rates: list[float] = []
    async_rates: list[float] = []
    for _ in range(repeat):  # interleaved, so that both see the same machine
        sync_rates.append(_drain_span(env, lambda: noop.map([()] * n) and None, n))
        async_rates.append(_drain_span(env, lambda: async_noop.map([()] * n) and None, n))
    ratio = statistics.median(async_rates) / statistics.median(sync_rates)
    return [
        Figure(f"async sleep ({sleepers:,} x asyncio.sleep(0.1), first claim to last "
               "completion)", "s", statistics.median(spans), 2.5, higher_is_better=False,
               runs=spans, note="one worker, default settings (ASYNC_CONCURRENCY 100)"),
        Figure(f"sync noop processing ({n:,} jobs, first claim to last completion)",
               "jobs/s", statistics.median(sync_rates), None, runs=sync_rates),
        Figure(f"async noop processing ({n:,} jobs, same)", "jobs/s",
               statistics.median(async_rates), None, runs=async_rates),
        Figure("async / sync noop processing", "x", ratio, 0.7),
    ]


def _round_trip() -> float:
    from bench.benchapp.tasks import noop

    t0 = time.perf_counter()
    noop.delay().result(timeout=10)
    return (time.perf_counter() - t0) * 1000


def bench_latency(env: Env, samples: int, idle_samples: int, idle_gap: float) -> list[Figure]:
    from bench.benchapp.tasks import noop

    clear_jobs()
    proc, log = env.start_worker()
    try:
        try:
            noop.delay().result(timeout=60)  # waits for the worker to be up
            for _ in range(10):  # warm-up
                _round_trip()
            times = sorted(_round_trip() for _ in range(samples))
            idle = []
            for _ in range(idle_samples):
                time.sleep(idle_gap)  # let the worker go idle (it polls less often then)
                idle.append(_round_trip())
        except TimeoutError as exc:
            raise BenchError(f"{exc}; worker log:\n{log.read_text()[-2000:]}") from None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    note = f"min {times[0]:.2f} ms, max {times[-1]:.2f} ms"
    figures = [
        Figure(f"latency p50 ({samples} x delay -> result)", "ms", _rank(times, 0.50),
               target("p50"), higher_is_better=False, note=note),
        Figure(f"latency p99 ({samples} x delay -> result)", "ms", _rank(times, 0.99),
               target("p99"), higher_is_better=False),
    ]
    if idle:
        idle.sort()
        figures.append(Figure(
            f"latency after {idle_gap:g} s idle, median of {len(idle)}", "ms",
            statistics.median(idle), None, higher_is_better=False,
            note="each: " + ", ".join(f"{t:.2f}" for t in idle)))
    return figures


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# -- output ------------------------------------------------------------------------------
def _fmt(value: float, unit: str) -> str:
    return (f"{value:,.2f} {unit}" if unit in ("ms", "x", "s")
            else f"{value:,.0f} {unit}")


def print_table(figures: list[Figure], header: str) -> None:
    rows = [("benchmark", "measured", "target", "status", "runs / notes")]
    for f in figures:
        target = ("—" if f.target is None else
                  ("≥ " if f.higher_is_better else "≤ ") + _fmt(f.target, f.unit))
        status = {True: "PASS", False: "SHORT", None: "info"}[f.passed]
        digits = 2 if f.unit == "s" else 0
        runs = ", ".join(f"{r:,.{digits}f}" for r in f.runs) if len(f.runs) > 1 else ""
        rows.append((f.name, _fmt(f.value, f.unit), target, status,
                     "; ".join(x for x in (runs, f.note) if x)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(header)
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) if j < 3 else c.ljust(w)
                        for j, (c, w) in enumerate(zip(row[:4], widths, strict=True)))
              + "  " + row[4])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 12)


def describe(env: Env) -> dict[str, Any]:
    import django
    from django.db import connection

    url = env.database_url
    return {
        "database": connection.vendor,
        "server": (f"{urlparse(url).hostname}:"
                   f"{urlparse(url).port or (3306 if env.mysql else 5432)}/{env.name}"
                   if url else None),
        "python": platform.python_version(),
        "django": django.get_version(),
        "cpus": os.cpu_count(),
        "host": platform.node(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# -- main --------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="Benchmark taskito's hot path (see the docstring).")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-jobs", type=int, default=10_000)
    parser.add_argument("--single-jobs", type=int, default=2_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--chord-jobs", type=int, default=1_000)
    parser.add_argument("--async-jobs", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--idle-samples", type=int, default=0)
    parser.add_argument("--idle-gap", type=float, default=1.5)
    parser.add_argument("--only", default="batch,single,processing,latency")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    args.only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = args.only - {"batch", "single", "processing", "latency", "chord", "async"}
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    if args.workers is None:  # the issues' set-ups: 1 worker on SQLite, 2 on a server
        args.workers = 2 if args.database_url else 1
    for name in ("repeat", "batch_jobs", "single_jobs", "samples", "workers", "chord_jobs",
                 "async_jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.idle_samples < 0 or args.idle_gap < 0:
        parser.error("--idle-samples and --idle-gap must be >= 0")
    return args


def run(args: argparse.Namespace, env: Env) -> list[Figure]:
    figures: list[Figure] = []
    if "batch" in args.only:
        figures.append(bench_batch(args.batch_jobs, args.repeat))
    if "single" in args.only:
        figures.append(bench_single(args.single_jobs, args.repeat))
    if "processing" in args.only:
        figures.extend(bench_processing(env, args.batch_jobs, args.repeat, args.workers))
    if "latency" in args.only:
        figures.extend(bench_latency(env, args.samples, args.idle_samples, args.idle_gap))
    if "chord" in args.only:
        figures.extend(bench_chord(env, args.chord_jobs, args.repeat))
    if "async" in args.only:
        figures.extend(bench_async(env, args.async_jobs, args.batch_jobs, args.repeat))
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix="taskito-bench-"))
    env = Env(workdir, args.database_url)
    try:
        env.setup()
        info = describe(env)
        figures = run(args, env)
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        env.teardown()
        if args.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(figures, f"taskito benchmark on {info['database']} ({info['cpus']} CPUs, "
                         f"Python {info['python']}, Django {info['django']})")
    if args.json_path:
        payload = {**info, "results": [{**asdict(f), "passed": f.passed} for f in figures]}
        Path(args.json_path).write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if args.strict and any(f.passed is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
