"""`manage.py taskito_info`: --json for scripts, the text tables, --watch redrawing under a
real pseudo-terminal (with rich and with the plain fallback), and an unreachable database."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from taskito.models import Job
from tests.conftest import ROOT, child_env, manage
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)  # the subprocesses read committed rows


def info(*args: str) -> str:
    out = StringIO()
    call_command("taskito_info", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def state(queue, engine, completed_job, dead_job):
    completed_job()
    dead_job()
    tasks.noop.apply_async(queue="mail")
    now = timezone.now()
    engine.heartbeat(worker_id="w-info", hostname="host-i", pid=4242, queues="mail,default",
                     concurrency=3, started_at=now - timedelta(hours=1), now=now)
    assert len(engine.claim(worker_id="w-info", limit=1, queues=["mail"])) == 1
    job = tasks.noop.apply_async(queue="mail")
    Job.objects.filter(id=job.id).update(scheduled_at=timezone.now() - timedelta(seconds=90))
    queue.pause("mail")


def test_json_has_queues_workers_and_totals(state):
    data = json.loads(info("--json", "--minutes", "5"))
    assert set(data) == {"now", "minutes", "stale_after", "jobs", "dead_letters", "throughput",
                         "queues", "workers"}
    assert data["minutes"] == 5 and data["dead_letters"] == 1
    queues = {q["name"]: q for q in data["queues"]}
    mail = queues["mail"]
    assert mail["paused"] is True and mail["workers"] == 1
    assert mail["jobs"]["running"] == 1 and mail["jobs"]["pending"] == 1
    assert 90 <= mail["oldest_pending_seconds"] < 150
    assert queues["default"]["succeeded"] == 1 and queues["default"]["failed"] == 1
    assert len(queues["default"]["throughput"]) == 5
    assert set(queues["default"]["throughput"][0]) == {"minute", "succeeded", "failed"}
    (worker,) = data["workers"]
    assert {k: worker[k] for k in ("id", "host", "pid", "queues", "concurrency", "busy",
                                   "alive")} == {
        "id": "w-info", "host": "host-i", "pid": 4242, "queues": ["mail", "default"],
        "concurrency": 3, "busy": 1, "alive": True}
    assert worker["last_heartbeat"].endswith("+00:00")


def test_text_shows_the_queue_and_worker_tables(state):
    text = info()
    assert text.startswith("taskito at ") and "1 live worker, 1 dead letter" in text
    mail = next(line for line in text.splitlines() if line.startswith("mail "))
    assert mail.split()[:4] == ["mail", "paused", "1", "1"]
    worker = next(line for line in text.splitlines() if line.startswith("w-info"))
    assert worker.split()[:6] == ["w-info", "host-i", "4242", "mail,default", "3", "1/3"]


def test_text_without_workers_or_jobs_says_so(queue):
    text = info()
    assert "No worker is running" in text


@pytest.mark.parametrize("args", [("--interval", "0"), ("--interval", "x"), ("--minutes", "0"),
                                  ("--minutes", "1441")])
def test_bad_flags_are_refused(args):
    with pytest.raises(CommandError, match=args[0]):
        info(*args)


def test_unreachable_database_is_one_line_and_exit_1(tmp_path):
    env = child_env(TASKITO_TEST_DIR=str(tmp_path / "elsewhere"),
                    TASKITO_TEST_PG_NAME="taskito_no_such_database")
    done = subprocess.run(manage("taskito_info"), env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("database unreachable: "), line
    assert done.stdout == ""


def test_exit_0_from_a_real_process(state):
    done = subprocess.run(manage("taskito_info", "--json"), env=child_env(),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["workers"][0]["id"] == "w-info"


# -- --watch under a pseudo-terminal ---------------------------------------------------------
def run_in_pty(argv: list[str], until: bytes, frames: int = 2,
               timeout: float = 60.0) -> tuple[int, bytes]:
    """Run `argv` on a new pseudo-terminal; once `until` has appeared `frames` times, send
    SIGINT; return (exit status, everything it wrote)."""
    master, slave = os.openpty()
    env = child_env(COLUMNS="200", LINES="60", TERM="xterm-256color")
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            close_fds=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    interrupted = False
    try:
        while True:
            if not interrupted and output.count(until) >= frames:
                proc.send_signal(signal.SIGINT)
                interrupted = True
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {frames} frames with {until!r} in time:\n{output!r}")
            ready, _, _ = select.select([master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                output += chunk
            elif interrupted and proc.poll() is not None:
                break
        return proc.wait(timeout=max(1.0, deadline - time.monotonic())), output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_watch_redraws_in_place_with_rich(state):
    code, output = run_in_pty(manage("taskito_info", "--watch", "--interval", "0.2"),
                              until=b"w-info")
    assert code == 0, output
    text = output.decode(errors="replace")
    assert "Queues" in text and "Workers" in text and "host-i" in text
    assert "\x1b[" in text  # the live display moves the cursor to redraw
    assert "1/3" in text  # busy slots


def test_watch_falls_back_to_plain_redraws_without_rich(state):
    script = ("import sys; sys.modules['rich'] = None; "
              "from django.core.management import execute_from_command_line; "
              "execute_from_command_line(['manage.py', 'taskito_info', '--watch', "
              "'--interval', '0.2'])")
    code, output = run_in_pty([sys.executable, "-c", script], until=b"w-info")
    assert code == 0, output
    text = output.decode(errors="replace")
    assert text.count("\x1b[H\x1b[J") >= 2  # cursor home, clear, the frame: each time
    assert "mail" in text and "paused" in text


def test_watch_json_prints_one_document_per_line(state):
    code, output = run_in_pty(manage("taskito_info", "--watch", "--json", "--interval",
                                     "0.2"), until=b'"w-info"')
    assert code == 0, output
    lines = [line for line in output.decode().splitlines() if line.startswith("{")]
    assert len(lines) >= 2
    assert all(json.loads(line)["workers"][0]["id"] == "w-info" for line in lines)
