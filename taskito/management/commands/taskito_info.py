"""`manage.py taskito_info [--json] [--watch [--interval 2]] [--minutes 15]`: the queues (job
counts, oldest pending wait, runs and failures over the last minutes, paused switch, live
workers) and the workers (host, pid, queues, busy slots, last heartbeat), from one
Queue.overview() call. `--watch` redraws in place until Ctrl-C, with rich's live display
when the `cli` extra is installed, plain ANSI redraws otherwise. A database that does not
answer is one line on stderr and exit status 1."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from taskito import terminal
from taskito.overview import MAX_MINUTES
from taskito.queue import queue as default_queue

#: ANSI: cursor home, then clear to the end of the screen
REDRAW = "\x1b[H\x1b[J"


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.1 <= number <= 3600:
        raise CommandError(f"--interval must be seconds from 0.1 to 3600, not {value!r}")
    return number


def _minutes(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_MINUTES:
        raise CommandError(f"--minutes must be from 1 to {MAX_MINUTES}, not {value!r}")
    return int(value)


class Command(BaseCommand):
    help = ("Show the queues (counts, oldest pending, runs, paused, workers) and the live "
            "workers; --json for scripts, --watch to redraw in place until Ctrl-C.")
    # read-only and often run on a busy host: no system checks (which open every alias)
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true",
                            help="print the overview as JSON (one line per frame with --watch)")
        parser.add_argument("--watch", action="store_true",
                            help="redraw every --interval seconds until Ctrl-C")
        parser.add_argument("--interval", type=_positive, default=2.0, metavar="SECONDS",
                            help="seconds between redraws of --watch (default 2)")
        parser.add_argument("--minutes", type=_minutes, default=15, metavar="N",
                            help="count runs and failures over the last N minutes (default 15)")

    def handle(self, *args: Any, **options: Any) -> None:
        minutes: int = options["minutes"]
        try:
            overview = default_queue.overview(minutes=minutes)
        except DatabaseError as exc:
            self.stderr.write(f"database unreachable: {first_line(exc)}")
            raise SystemExit(1) from None
        if not options["watch"]:
            self.stdout.write(self._render(overview, options["json"]), ending="")
            return
        try:
            self._watch(overview, minutes, options["interval"], options["json"])
        except KeyboardInterrupt:
            self.stdout.write("", ending="\n")

    def _render(self, overview: dict[str, Any], as_json: bool, lines: bool = False) -> str:
        if as_json:
            data = terminal.as_json(overview)
            return (json.dumps(data) if lines else json.dumps(data, indent=2)) + "\n"
        return terminal.as_text(overview)

    def _read(self, minutes: int) -> dict[str, Any] | str:
        """The overview, or a line saying why the database did not answer (and a fresh
        connection next time)."""
        try:
            return default_queue.overview(minutes=minutes)
        except DatabaseError as exc:
            connections[default_queue.using].close()
            return f"database unreachable: {first_line(exc)} (retrying)"

    def _watch(self, overview: dict[str, Any], minutes: int, interval: float,
               as_json: bool) -> None:
        out = sys.stdout
        terminal_out = out.isatty() and not as_json
        live = _rich_live() if terminal_out else None
        if live is not None:
            live(overview, lambda: self._read(minutes), interval)
            return
        current: dict[str, Any] | str = overview
        while True:
            if isinstance(current, str):
                frame = current + "\n"
            else:
                frame = self._render(current, as_json, lines=True)
            out.write((REDRAW if terminal_out else "") + frame)
            out.flush()
            time.sleep(interval)
            current = self._read(minutes)


Read = Callable[[], "dict[str, Any] | str"]


def _rich_live() -> Callable[[dict[str, Any], Read, float], None] | None:
    """A loop that redraws with rich's Live display, or None without rich."""
    try:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text
    except ImportError:
        return None

    def run(overview: dict[str, Any], read: Read, interval: float) -> None:
        with Live(terminal.as_rich(overview), console=Console(), auto_refresh=False,
                  transient=False) as live:
            live.refresh()
            while True:
                time.sleep(interval)
                current = read()
                live.update(Text(current) if isinstance(current, str)
                            else terminal.as_rich(current), refresh=True)

    return run
