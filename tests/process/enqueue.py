"""Enqueue from a separate process, for the process tests.

    python -m tests.process.enqueue record --tag p0 --count 250 --path OUT [--barrier DIR]
        enqueue `record(OUT, "<tag>-<i>")` jobs, alternating chunks of single `delay()` calls
        and `map()` batches; print one job id per line. With --chain, every other single
        call is `apply_async(depends_on=[the previous job])` instead.
    python -m tests.process.enqueue unique --key KEY --count 50 [--barrier DIR]
        enqueue `add(1, 2)` with the same unique_key `count` times; print "<id> <created>"
        per call

With --barrier DIR the process writes DIR/ready-<pid> once Django is set up and waits for
DIR/go before enqueueing, so that several processes start at the same moment.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

CHUNK = 10


def _barrier(directory: str | None) -> None:
    if directory is None:
        return
    from tests.process.helpers import wait_for_path

    path = Path(directory)
    (path / f"ready-{os.getpid()}").touch()
    wait_for_path(path / "go", timeout=60)


def record(args: argparse.Namespace) -> None:
    from tests.testapp.tasks import record as record_task

    values = [f"{args.tag}-{i}" for i in range(args.count)]
    _barrier(args.barrier)
    ids: list[uuid.UUID] = []
    for n, start in enumerate(range(0, len(values), CHUNK)):
        chunk = values[start:start + CHUNK]
        if n % 2 == 0:
            for i, value in enumerate(chunk):
                after = [ids[-1]] if args.chain and ids and i % 2 else None
                ids.append(record_task.apply_async(args=(args.path, value),
                                                   depends_on=after).id)
        else:
            ids.extend(job.id for job in record_task.map([(args.path, v) for v in chunk]))
    sys.stdout.write("".join(f"{i}\n" for i in ids))


def unique(args: argparse.Namespace) -> None:
    from tests.testapp.tasks import add

    _barrier(args.barrier)
    for _ in range(args.count):
        job = add.apply_async(args=(1, 2), unique_key=args.key)
        sys.stdout.write(f"{job.id} {job.created}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.process.enqueue")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--tag", required=True)
    rec.add_argument("--count", type=int, required=True)
    rec.add_argument("--path", required=True)
    rec.add_argument("--chain", action="store_true")
    uni = sub.add_parser("unique")
    uni.add_argument("--key", required=True)
    uni.add_argument("--count", type=int, required=True)
    for p in (rec, uni):
        p.add_argument("--barrier", default=None)
    args = parser.parse_args(argv)

    import django

    django.setup()
    {"record": record, "unique": unique}[args.command](args)


if __name__ == "__main__":
    main()
