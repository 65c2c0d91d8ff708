"""Settings for bench/run.py: taskito plus the bench app, on a database chosen by environment.

- BENCH_TASKITO=<JSON>: the TASKITO setting (default: none);
- BENCH_DB_OPTIONS=<JSON>: OPTIONS of a server database (e.g. '{"server_side_binding": true,
  "prepare_threshold": 5}' for psycopg's prepared statements on a direct PostgreSQL line);
- BENCH_DB_PATH=<file>: a SQLite file (run.py makes a fresh one in a temp dir);
- BENCH_DATABASE_URL=postgres://user:pass@host:port/<db> (or mysql://...) with
  BENCH_PG_NAME=<name>: the PostgreSQL (or MariaDB/MySQL) server of that URL, database <name>
  (run.py creates and drops it).
"""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlparse

SECRET_KEY = "taskito-bench"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["taskito", "bench.benchapp"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _database() -> dict[str, object]:
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        parsed = urlparse(url)
        mysql = parsed.scheme in ("mysql", "mariadb")
        return {
            "ENGINE": "django.db.backends.mysql" if mysql else "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "taskito_bench"),
            "USER": unquote(parsed.username or ("root" if mysql else "postgres")),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "127.0.0.1",
            "PORT": str(parsed.port or (3306 if mysql else 5432)),
            "OPTIONS": {**({"charset": "utf8mb4"} if mysql else {}),
                        **json.loads(os.environ.get("BENCH_DB_OPTIONS", "{}"))},
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB_PATH", "bench.sqlite3"),
        # what taskito's system check recommends (taskito.W001)
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
    }


DATABASES = {"default": _database()}
# BENCH_TASKITO='{"METRICS_PORT": 0}': the same run with a setting changed (say, the
# per-worker Prometheus series on, to see what they cost)
TASKITO = json.loads(os.environ.get("BENCH_TASKITO", "{}"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"taskito": {"handlers": ["console"], "level": "WARNING"}},
}
