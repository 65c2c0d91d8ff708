"""A throwaway PgBouncer (Debian's `pgbouncer`, installed by scripts/setup.sh) in transaction
pooling mode in front of a PostgreSQL server, for the tests of the pooled deployment.

Its ini, userlist, pidfile and log live in a temporary directory that `stop()` removes; it
listens on TCP only (no unix socket). PgBouncer refuses to run as root, so under root it runs
as the `postgres` user."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.services import unavailable

BINARY_PLACES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_binary() -> str:
    """The pgbouncer executable, or unavailable() with the reason."""
    found = shutil.which("pgbouncer") or next(
        (p for p in BINARY_PLACES if os.access(p, os.X_OK)), None)
    if found is None:
        unavailable("pgbouncer is not installed (apt-get install -y pgbouncer; "
                    "scripts/setup.sh installs it)")
    return found


@dataclass
class PgBouncer:
    """A running PgBouncer: clients connect to host:port."""

    host: str
    port: int
    directory: Path
    popen: subprocess.Popen[bytes]

    @property
    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Shut it down at once (SIGTERM, closing every client) and remove its directory."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _config(directory: Path, listen: str, port: int, upstream: str, upstream_port: int,
            pool_mode: str, pool_size: int) -> str:
    return f"""[databases]
* = host={upstream} port={upstream_port}

[pgbouncer]
listen_addr = {listen}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 2000
ignore_startup_parameters = extra_float_digits,options
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
log_connections = 0
log_disconnections = 0
"""


def _owner() -> tuple[int, int] | None:
    """uid, gid to run as: pgbouncer will not run as root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        unavailable("running as root and there is no 'postgres' user to run pgbouncer as")
    return entry.pw_uid, entry.pw_gid


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_pgbouncer(*, upstream: str = "127.0.0.1", upstream_port: int = 5432,
                    listen: str = "127.0.0.1", port: int | None = None,
                    pool_mode: str = "transaction", pool_size: int = 20,
                    timeout: float = 15.0) -> PgBouncer:
    """Start PgBouncer on `listen`:`port` (a free port by default) pooling connections to
    `upstream`:`upstream_port`; return once it accepts connections."""
    binary = pgbouncer_binary()
    owner = _owner()
    for attempt in range(3):  # a free port may be taken before pgbouncer binds it
        directory = Path(tempfile.mkdtemp(prefix="taskito-pgbouncer-"))
        chosen = port or _free_port(listen)
        (directory / "pgbouncer.ini").write_text(_config(
            directory, listen, chosen, upstream, upstream_port, pool_mode, pool_size))
        (directory / "userlist.txt").write_text('"postgres" ""\n')
        if owner is not None:
            os.chmod(directory, 0o755)
            for path in (directory, *directory.iterdir()):
                os.chown(path, *owner)
        kwargs: dict[str, int] = {} if owner is None else {"user": owner[0], "group": owner[1]}
        with (directory / "stderr.txt").open("wb") as err:
            popen = subprocess.Popen([binary, str(directory / "pgbouncer.ini")],
                                     stdout=subprocess.DEVNULL, stderr=err, **kwargs)
        bouncer = PgBouncer(listen, chosen, directory, popen)
        deadline = time.monotonic() + timeout
        while popen.poll() is None and time.monotonic() < deadline:
            if _answers(listen, chosen):
                return bouncer
            time.sleep(0.05)
        failure = bouncer.log + (directory / "stderr.txt").read_text(errors="replace")
        bouncer.stop()
        if port is not None or attempt == 2:
            raise RuntimeError(f"pgbouncer did not start on {listen}:{chosen}:\n{failure}")
    raise AssertionError("unreachable")
