"""taskito.registry: @task option validation and the name -> spec map."""

from __future__ import annotations

import pytest

from taskito import queue
from taskito.exceptions import ConfigurationError, TaskNotRegistered
from taskito.registry import BreakerSpec, Registry, build_spec, parse_rate_limit


def sample(x: int) -> int:
    return x


def other(x: int) -> int:
    return -x


async def sample_async() -> None:
    return None


def test_build_spec_name_defaults_to_module_and_qualname():
    assert build_spec(sample).name == f"{__name__}.sample"


def test_build_spec_keeps_an_explicit_name():
    assert build_spec(sample, name="custom.name").name == "custom.name"


def test_build_spec_marks_coroutine_functions_async():
    assert build_spec(sample_async).is_async
    assert not build_spec(sample).is_async


@pytest.mark.parametrize(("value", "expected"),
                         [("100/m", (100, 60)), ("10/s", (10, 1)), ("1000/h", (1000, 3600)),
                          (" 5 / minute ", (5, 60))])
def test_parse_rate_limit_accepts_count_per_period(value, expected):
    assert parse_rate_limit(value) == expected


@pytest.mark.parametrize("value", ["fast", "100", "0/m", "10/d", "-1/s", "1.5/s", 100])
def test_build_spec_rejects_bad_rate_limit(value):
    with pytest.raises(ConfigurationError, match="rate_limit"):
        build_spec(sample, rate_limit=value)


@pytest.mark.parametrize("value", ["ValueError", [ValueError, 3], 42, [object]])
def test_build_spec_rejects_retry_on_that_is_not_exception_classes(value):
    with pytest.raises(ConfigurationError, match="retry_on"):
        build_spec(sample, retry_on=value)


def test_build_spec_rejects_bad_dont_retry_on():
    with pytest.raises(ConfigurationError, match="dont_retry_on"):
        build_spec(sample, dont_retry_on=["KeyError"])


def test_build_spec_accepts_a_single_exception_class():
    assert build_spec(sample, retry_on=KeyError).retry_on == (KeyError,)


@pytest.mark.parametrize("option", ["retry_backoff", "max_retry_delay", "timeout",
                                    "soft_timeout", "expires", "result_ttl", "max_retries"])
def test_build_spec_rejects_negative_numbers(option):
    with pytest.raises(ConfigurationError, match=option):
        build_spec(sample, **{option: -1})


@pytest.mark.parametrize(("option", "value"),
                         [("max_retries", 1.5), ("max_retries", True), ("priority", "high"),
                          ("timeout", "60"), ("timeout", True)])
def test_build_spec_rejects_wrong_types(option, value):
    with pytest.raises(ConfigurationError, match=option):
        build_spec(sample, **{option: value})


@pytest.mark.parametrize("value", [[], [1, -2], "1,2", [None]])
def test_build_spec_rejects_bad_retry_delays(value):
    with pytest.raises(ConfigurationError, match="retry_delays"):
        build_spec(sample, retry_delays=value)


def test_build_spec_stores_retry_delays_as_float_tuple():
    assert build_spec(sample, retry_delays=[1, 2.5]).retry_delays == (1.0, 2.5)


@pytest.mark.parametrize("value", ["", 7])
def test_build_spec_rejects_bad_queue_name(value):
    with pytest.raises(ConfigurationError, match="queue"):
        build_spec(sample, queue=value)


def test_build_spec_allows_negative_priority():
    assert build_spec(sample, priority=-5).priority == -5


def test_build_spec_rejects_unknown_option_as_configuration_error():
    with pytest.raises(ConfigurationError, match="max_retry"):
        build_spec(sample, max_retry=3)


def test_should_retry_everything_by_default():
    assert build_spec(sample).should_retry(RuntimeError())


def test_should_retry_only_listed_retry_on_exceptions():
    spec = build_spec(sample, retry_on=[KeyError])
    assert spec.should_retry(KeyError())
    assert not spec.should_retry(ValueError())


def test_should_retry_dont_retry_on_wins_over_retry_on():
    spec = build_spec(sample, retry_on=[LookupError], dont_retry_on=[KeyError])
    assert not spec.should_retry(KeyError())
    assert spec.should_retry(IndexError())


def test_registry_register_then_get():
    reg = Registry()
    spec = build_spec(sample, name="x.sample")
    reg.register(spec)
    assert reg.get("x.sample") is spec
    assert reg.names() == ["x.sample"]


def test_registry_get_unknown_raises_task_not_registered():
    with pytest.raises(TaskNotRegistered, match=r"no\.such\.task"):
        Registry().get("no.such.task")


def test_registry_find_unknown_is_none():
    assert Registry().find("no.such.task") is None


def test_registry_duplicate_name_for_another_function_raises():
    reg = Registry()
    reg.register(build_spec(sample, name="dup"))
    with pytest.raises(ConfigurationError, match="'dup'"):
        reg.register(build_spec(other, name="dup"))


def test_registry_same_function_registered_again_is_allowed():
    reg = Registry()
    reg.register(build_spec(sample, name="again"))
    reg.register(build_spec(sample, name="again", priority=3))
    assert reg.get("again").priority == 3


def test_queue_task_refuses_a_name_taken_by_another_function():
    def impostor() -> None:
        return None

    with pytest.raises(ConfigurationError, match=r"tests\.echo"):
        queue.task(name="tests.echo")(impostor)


def test_registry_unregister_removes_the_name():
    reg = Registry()
    reg.register(build_spec(sample, name="gone"))
    reg.unregister("gone")
    assert reg.find("gone") is None


# -- written to kill the mutants mutmut left alive (see README "Mutation testing") ---------

def test_build_spec_lists_every_unknown_option():
    with pytest.raises(ConfigurationError, match="unknown task option\\(s\\): colour, size; "):
        build_spec(sample, size=1, colour="red")


@pytest.mark.parametrize("limit", [0, True, 1.5, "2"])
def test_build_spec_refuses_a_bad_max_concurrent(limit):
    with pytest.raises(ConfigurationError, match="max_concurrent must be an int >= 1"):
        build_spec(sample, max_concurrent=limit)


def test_build_spec_edges_that_are_valid():
    spec = build_spec(sample, max_concurrent=1, max_retries=0, retry_delays=[0],
                      retry_backoff=0, rate_limit="1/s")
    assert (spec.max_concurrent, spec.max_retries, spec.retry_delays, spec.rate_limit) == \
        (1, 0, (0,) if isinstance(spec.retry_delays, tuple) else [0], "1/s")
    assert parse_rate_limit("1/s") == (1, 1)


@pytest.mark.parametrize(("options", "message"), [
    ({"max_retries": -1}, "task option max_retries must be >= 0"),
    ({"retry_delays": [1, -2]}, "retry_delays"),
    ({"dont_retry_on": [42]}, "dont_retry_on"),
    ({"rate_limit": "fast"}, "rate_limit 'fast' is not of the form"),
])
def test_build_spec_errors_name_the_option(options, message):
    with pytest.raises(ConfigurationError, match=message):
        build_spec(sample, **options)


def test_register_refuses_a_function_of_another_module_under_the_same_name():
    def look_alike(x: int) -> int:
        return x

    look_alike.__qualname__ = sample.__qualname__
    look_alike.__module__ = "somewhere.else"
    reg = Registry()
    reg.register(build_spec(sample, name="same"))
    with pytest.raises(ConfigurationError, match=r"give one of them another name=\.\.\."):
        reg.register(build_spec(look_alike, name="same"))
    reg.register(build_spec(sample, name="same"))  # the same function again: fine


def test_a_resolver_added_twice_is_asked_once():
    calls = []
    reg = Registry()

    def resolver(name):
        calls.append(name)

    reg.add_resolver(resolver)
    reg.add_resolver(resolver)
    assert reg.resolve("nobody") is None
    assert calls == ["nobody"]


def test_unregister_of_an_unknown_name_does_nothing():
    reg = Registry()
    reg.unregister("never.registered")
    assert reg.names() == []


def test_register_accepts_the_same_function_from_a_module_imported_twice():
    def made() -> object:  # a module executed twice makes a new function object each time
        def task(x: int) -> int:
            return x

        task.__module__, task.__qualname__ = "app.tasks", "task"
        return task

    first, second = made(), made()
    assert first is not second
    reg = Registry()
    reg.register(build_spec(first, name="app.tasks.task"))
    reg.register(build_spec(second, name="app.tasks.task"))
    assert reg.get("app.tasks.task").func is second


def test_periodic_specs_are_kept_by_name():
    from taskito.registry import PeriodicSpec

    reg = Registry()
    every = PeriodicSpec(name="every", task_name="t", cron="* * * * *")
    reg.add_periodic(every)
    reg.add_periodic(every)
    assert reg.periodic() == [every]


def test_circuit_breaker_option_is_parsed_with_defaults():
    spec = build_spec(sample, circuit_breaker={"threshold": 2, "cooldown": 10})
    assert spec.circuit_breaker == BreakerSpec(threshold=2, window=60.0, cooldown=10.0)
    assert build_spec(sample).circuit_breaker is None


@pytest.mark.parametrize(("value", "message"), [
    ("5/60/300", "must be a dict"),
    ({"threshhold": 5}, "unknown circuit_breaker key.*threshhold.*valid keys: threshold"),
    ({"threshold": 0}, "threshold must be an int >= 1"),
    ({"threshold": 2.5}, "threshold must be an int >= 1"),
    ({"threshold": True}, "threshold must be an int >= 1"),
    ({"window": 0}, "window must be a number of seconds > 0"),
    ({"cooldown": -1}, "cooldown must be a number of seconds > 0"),
    ({"cooldown": "5m"}, "cooldown must be a number of seconds > 0"),
    ({"window": float("nan")}, "window must be"),
    ({"window": float("inf")}, "window must be"),
])
def test_circuit_breaker_option_refuses_bad_values_at_decoration(value, message):
    with pytest.raises(ConfigurationError, match=message):
        queue.task(circuit_breaker=value)(sample)


def test_registry_knows_which_tasks_have_a_breaker():
    reg = Registry()
    reg.register(build_spec(sample, name="plain"))
    reg.register(build_spec(sample, name="guarded", circuit_breaker={}))
    assert reg.breakers == {"guarded"}
    reg.unregister("guarded")
    assert reg.breakers == frozenset()
