"""The models and the migrations agree."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_migrations_are_complete():
    call_command("makemigrations", "taskito", "--check", "--dry-run", verbosity=0)
