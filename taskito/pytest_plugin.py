"""pytest plugin (entry point `pytest11`): the `taskito_run` fixture. It defines one fixture
and no hooks, so a suite that does not use it runs as before; loading it imports the taskito
package, which a project with taskito in INSTALLED_APPS imports at django.setup() anyway
(no settings are read and no database is touched until a test asks for the fixture)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def taskito_run(request: pytest.FixtureRequest) -> Any:
    """`taskito.testing.run_jobs`, with the test's database: the test gets pytest-django's
    `db` unless it asked for `transactional_db` (or `live_server`) itself."""
    wants_db = not {"transactional_db", "live_server"} & set(request.fixturenames)
    if wants_db and request.config.pluginmanager.hasplugin("django"):
        request.getfixturevalue("db")
    from taskito.testing import run_jobs

    return run_jobs
