"""docs/api.md, the project's own reference for its public API, names everything public:
a name added to the package, the Queue, the HTTP routes, the settings, the signals or the
worker's flags fails here until the page lists it."""

from __future__ import annotations

import argparse
import re

import pytest

import taskito
from taskito import signals
from taskito.conf import DEFAULTS
from taskito.contrib.endpoints import ROUTES
from taskito.management.commands.taskito_worker import Command
from taskito.queue import ASYNC_TWINS
from taskito.registry import OPTIONS
from tests.conftest import ROOT

PAGE = (ROOT / "docs" / "api.md").read_text()


def named(name: str) -> bool:
    """Whether the page shows `name` as code (`name`, `name(...)`, `--name ...`)."""
    return re.search(r"`[^`]*(?<![\w-])" + re.escape(name) + r"(?![\w-])[^`]*`", PAGE) is not None


@pytest.mark.parametrize("name", taskito.__all__)
def test_package_names(name):
    assert named(name)


@pytest.mark.parametrize("name", ASYNC_TWINS)
def test_queue_operations(name):
    assert named(name)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_http_routes(route):
    method, path = ROUTES[route]
    assert re.search(rf"\| {method} \| `{re.escape(path)}`", PAGE), (method, path)


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_settings(key):
    assert named(key)


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_task_options(option):
    assert named(option)


@pytest.mark.parametrize("name", sorted(n for n, v in vars(signals).items()
                                        if isinstance(v, signals.Signal)))
def test_signals(name):
    assert named(name)


def worker_flags() -> list[str]:
    parser = argparse.ArgumentParser()
    Command().add_arguments(parser)
    return sorted(s for a in parser._actions for s in a.option_strings
                  if s.startswith("--") and s != "--help")


@pytest.mark.parametrize("flag", worker_flags())
def test_worker_flags(flag):
    assert named(flag)


def test_nothing_in_the_repository_points_at_a_missing_api_md():
    cited = [p for p in (*ROOT.joinpath("taskito").rglob("*.py"),
                         *ROOT.joinpath("tests").rglob("*.py"), *ROOT.glob("*.md"))
             if re.search(r"(?<![/\w])API\.md", p.read_text())]
    assert cited == [], "cite docs/api.md"
