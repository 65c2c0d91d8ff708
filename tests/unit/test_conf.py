"""taskito.conf: one validated TASKITO dict, re-read when a test overrides it."""

from __future__ import annotations

import pytest
from django.test import override_settings

from taskito import queue
from taskito.conf import DEFAULTS, taskito_settings, validate
from taskito.exceptions import ConfigurationError


def test_conf_defaults_fill_missing_keys():
    assert DEFAULTS["DEFAULT_QUEUE"] == taskito_settings.DEFAULT_QUEUE
    assert taskito_settings.DEFAULT_MAX_RETRIES == 3


def test_conf_reads_the_projects_setting():
    # tests/settings.py sets DEFAULT_RETRY_BACKOFF to 0
    assert taskito_settings.DEFAULT_RETRY_BACKOFF == 0.0


def test_conf_override_settings_is_picked_up():
    with override_settings(TASKITO={"DEFAULT_QUEUE": "overridden", "DEFAULT_PRIORITY": 4}):
        assert taskito_settings.DEFAULT_QUEUE == "overridden"
        assert queue.default_queue == "overridden"
        assert queue.default_priority == 4
    assert taskito_settings.DEFAULT_QUEUE == "default"


def test_conf_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="NOPE"):
        _ = taskito_settings.NOPE


def test_conf_get_returns_default_for_keys_without_one():
    assert taskito_settings.get("REST_PERMISSION_CLASSES", "fallback") == "fallback"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DATABASE", 1),
        ("DEFAULT_QUEUE", None),
        ("DEFAULT_PRIORITY", "high"),
        ("DEFAULT_PRIORITY", 1.5),
        ("DEFAULT_MAX_RETRIES", True),
        ("DEFAULT_TIMEOUT", "300"),
        ("RESULT_TTL", [60]),
        ("CONCURRENCY", 2.0),
        ("SQLITE_PRAGMAS", "yes"),
        ("AUTODISCOVER_MODULE", 3),
    ],
)
def test_validate_rejects_bad_types(key, value):
    with pytest.raises(ConfigurationError, match=key):
        validate({key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DEFAULT_MAX_RETRIES", -1),
        ("DEFAULT_TIMEOUT", -5),
        ("RESULT_TTL", -1),
        ("DEFAULT_RETRY_BACKOFF", -0.5),
        ("CONCURRENCY", 0),
        ("POLL_INTERVAL", 0),
        ("IDLE_RECHECK", -1),
        ("DEFAULT_MAX_RETRY_DELAY", 0),
    ],
)
def test_validate_rejects_out_of_range_numbers(key, value):
    with pytest.raises(ConfigurationError, match=key):
        validate({key: value})


def test_validate_accepts_the_defaults():
    assert validate(DEFAULTS) is None
    # and every default reads back as itself through an override that spells them all out
    with override_settings(TASKITO=dict(DEFAULTS)):
        assert {key: getattr(taskito_settings, key) for key in DEFAULTS} == DEFAULTS


def test_validate_ignores_keys_of_other_surfaces():
    assert validate({"REST_PERMISSION_CLASSES": ["x"]}) is None
    with override_settings(TASKITO={"REST_PERMISSION_CLASSES": ["x"]}):
        assert taskito_settings.get("REST_PERMISSION_CLASSES") == ["x"]


def test_conf_bad_override_raises_configuration_error_on_use():
    with override_settings(TASKITO={"CONCURRENCY": 0}), pytest.raises(ConfigurationError,
                                                                        match="CONCURRENCY"):
        _ = taskito_settings.CONCURRENCY


def test_conf_setting_that_is_not_a_dict_raises_configuration_error():
    with override_settings(TASKITO=["DATABASE"]), pytest.raises(ConfigurationError,
                                                                 match="must be a dict"):
        _ = taskito_settings.DATABASE


def test_conf_is_valid_again_after_a_bad_override_ends():
    before = taskito_settings.CONCURRENCY
    # read inside the override: the bad value is what the settings object sees now
    with override_settings(TASKITO={"CONCURRENCY": "many"}), \
            pytest.raises(ConfigurationError, match="CONCURRENCY"):
        _ = taskito_settings.CONCURRENCY
    assert taskito_settings.CONCURRENCY == before == DEFAULTS["CONCURRENCY"]
