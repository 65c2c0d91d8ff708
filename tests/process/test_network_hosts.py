"""Worker hosts with their own network stack: each worker runs in a network namespace made by
the test and reaches PostgreSQL only over its veth link, through a forwarder bound to the host
side of that link. Exactly-once across hosts, connections per worker within budget, and a
host whose link is cut: its lifeline lease moves to another host and its running jobs are
rescued after the stale limit.

Skipped (with the reason) without root or where the kernel refuses `ip netns add`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from taskito.models import Job, Lease
from taskito.states import JobStatus
from tests.conftest import wait_for
from tests.helpers.netns import Forwarder, Host, Hosts
from tests.process.conftest import Spawn
from tests.process.helpers import Proc, worker_argv
from tests.testapp import tasks

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

CONCURRENCY = 4
FORWARD_PORT = 55432


class Site:
    """The hosts, a forwarder for each, and a way to start a worker on one."""

    def __init__(self, hosts: list[Host], forwarders: list[Forwarder], spawn: Spawn) -> None:
        self.hosts, self.forwarders, self.spawn = hosts, forwarders, spawn

    def worker(self, i: int, *args: str, **overrides: float) -> Proc:
        host, name = self.hosts[i], f"host{i}"
        argv = host.argv(*worker_argv("--worker-id", name, "--concurrency", str(CONCURRENCY),
                                      "--pool", "thread", *args))
        return self.spawn(name, argv, TASKITO_TEST_DB_HOST=host.gateway,
                          TASKITO_TEST_DB_PORT=str(FORWARD_PORT),
                          TASKITO_TEST_APP_NAME=f"taskito-{name}",
                          TASKITO_TEST_OVERRIDES=json.dumps(overrides))


@pytest.fixture
def site(spawn: Spawn) -> Iterator[Site]:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the multi-host engine")
    settings = connection.settings_dict
    target = (settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432))
    hosts = Hosts(3)
    forwarders: list[Forwarder] = []
    try:
        made = hosts.open()
        forwarders.extend(Forwarder(h.gateway, FORWARD_PORT, *target) for h in made)
        yield Site(made, forwarders, spawn)
    finally:
        for forwarder in forwarders:
            forwarder.close()
        hosts.close()


def target_port() -> int:
    return int(connection.settings_dict["PORT"] or 5432)


def _connections_per_worker() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT application_name, COUNT(*) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND application_name LIKE "
                       "'taskito-host%%' GROUP BY application_name")
        return dict(cursor.fetchall())


def test_workers_on_three_hosts_run_each_job_once_within_their_connection_budget(
        site: Site, executions: None):
    n = 3000
    tasks.count_execution.map([(str(i),) for i in range(n)])
    workers = [site.worker(i) for i in range(3)]
    peak: Counter[str] = Counter()
    stop = threading.Event()

    def sample() -> None:  # in a thread of its own: one more connection, not a worker's
        while not stop.is_set():
            for name, count in _connections_per_worker().items():
                peak[name] = max(peak[name], count)
            stop.wait(0.05)
        connection.close()

    # inside a namespace PostgreSQL is reachable only through the link's forwarder
    probe = "import socket; socket.create_connection(('127.0.0.1', %d), timeout=2)"
    blocked = subprocess.run(site.hosts[0].argv(sys.executable, "-c", probe % target_port()),
                             capture_output=True, timeout=30)
    assert blocked.returncode != 0
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        wait_for(lambda: not Job.objects.filter(status__in=[0, 1]).exists(), timeout=180,
                 interval=0.2)
    finally:
        stop.set()
        sampler.join()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COUNT(DISTINCT tag) FROM taskito_test_executions")
        assert cursor.fetchone() == (n, n)
    by_host = Counter(Job.objects.values_list("worker_id", flat=True))
    assert set(by_host) <= {"host0", "host1", "host2"}, by_host
    # thread pool: the loop (claims, finishes, lifeline), the LISTEN connection, and one per
    # task thread that used the database
    assert set(peak) == {"taskito-host0", "taskito-host1", "taskito-host2"}, peak
    assert max(peak.values()) <= 2 + CONCURRENCY, peak
    print(f"peak connections per worker (thread pool, concurrency {CONCURRENCY}): {peak}")
    for w in workers:
        w.popen.terminate()
        assert w.wait(timeout=30) == 0, w.describe()


def _holder() -> str | None:
    lease = Lease.objects.filter(name="lifeline").first()
    return lease.holder if lease is not None else None


def test_a_cut_host_loses_the_lease_and_its_running_jobs_are_rescued(
        site: Site, tmp_path: Path):
    # lease TTL is 2 heartbeats and renewed every second: keep the heartbeat >= 0.5 s
    fast = {"HEARTBEAT_INTERVAL": 0.5, "WORKER_STALE_AFTER": 2.0}
    workers = {f"host{i}": site.worker(i, **fast) for i in range(3)}
    victim = wait_for(_holder, timeout=60)
    index = int(victim.removeprefix("host"))
    out = tmp_path / "executions.txt"
    jobs = tasks.record_slow.map([(str(out), str(i), 2.0) for i in range(3 * CONCURRENCY)])
    wait_for(lambda: Job.objects.filter(status=JobStatus.RUNNING, worker_id=victim).exists(),
             timeout=60)
    site.hosts[index].cut()  # the host drops off the network...
    site.forwarders[index].cut()  # ...and the server sees its connections go
    stranded = set(Job.objects.filter(status=JobStatus.RUNNING, worker_id=victim)
                   .values_list("id", flat=True))
    print(f"cut {victim} holding the lease with {len(stranded)} running jobs")
    new_holder = wait_for(lambda: (h := _holder()) not in (None, victim) and h, timeout=60)
    assert new_holder in set(workers) - {victim}
    wait_for(lambda: not Job.objects.filter(status__in=[0, 1]).exists(), timeout=120,
             interval=0.2)
    for job in jobs:
        job.refresh()
        assert job.status == "complete", job.id
    rescued = Job.objects.filter(id__in=stranded)
    assert rescued.count() == len(stranded) > 0
    for job in rescued:
        assert job.worker_id != victim and job.attempts >= 2, (job.id, job.worker_id)
    counts = Counter(out.read_text().split())
    assert set(counts) == {str(i) for i in range(3 * CONCURRENCY)}
    assert workers[victim].popen.poll() is None  # cut off, not dead: a zombie until killed
    for name, proc in workers.items():
        if name != victim:
            proc.popen.terminate()
            assert proc.wait(timeout=30) == 0, proc.describe()
