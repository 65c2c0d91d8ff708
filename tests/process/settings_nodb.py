"""The tests' settings with the job database pointed somewhere taskito cannot use:

- TASKITO_NODB_SQLITE=<path>: a SQLite file without taskito's tables (or in a missing
  directory);
- TASKITO_NODB_PG_NAME=<name>: a database name on the test server, PostgreSQL or
  MariaDB/MySQL (e.g. one that does not exist).
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

if "TASKITO_NODB_SQLITE" in os.environ:
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["TASKITO_NODB_SQLITE"],
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
    }
elif "TASKITO_NODB_PG_NAME" in os.environ:
    DATABASES["default"]["NAME"] = os.environ["TASKITO_NODB_PG_NAME"]
