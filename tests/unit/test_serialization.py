"""taskito.serialization: JSON only, and errors that name the offending value."""

from __future__ import annotations

import datetime
import json

import pytest

from taskito.exceptions import SerializationError
from taskito.serialization import dump_call, dumps, loads


def test_dump_call_encodes_args_and_kwargs_compactly():
    args, kwargs = dump_call("t", (1, "é", [2]), {"x": {"y": None}})
    assert args == '[1,"é",[2]]'
    assert kwargs == '{"x":{"y":null}}'


def test_dump_call_accepts_missing_args_and_kwargs():
    assert dump_call("t", None, None) == ("[]", "{}")


def test_dump_call_names_the_offending_positional_argument():
    with pytest.raises(SerializationError, match=r"argument 1 of myapp\.task .*set"):
        dump_call("myapp.task", [1, {2, 3}], {})


def test_dump_call_names_the_offending_keyword_argument():
    with pytest.raises(SerializationError, match=r"keyword argument 'when' of t .*datetime"):
        dump_call("t", [1], {"ok": 1, "when": datetime.datetime(2024, 1, 1)})


def test_dump_call_names_a_nested_offender_by_its_argument():
    with pytest.raises(SerializationError, match="argument 0 of t"):
        dump_call("t", [{"deep": [object()]}], None)


def test_dump_call_refuses_a_non_string_keyword():
    with pytest.raises(SerializationError, match=r"keyword \(1, 2\) of t is not a string"):
        dump_call("t", [], {(1, 2): "x"})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_dump_call_refuses_nan_and_infinity(value):
    with pytest.raises(SerializationError, match="argument 0 of t"):
        dump_call("t", [value], None)


def test_dumps_refuses_nan():
    with pytest.raises(SerializationError, match="result is not JSON-serializable"):
        dumps(float("nan"), "result")


def test_serialization_error_is_a_type_error():
    with pytest.raises(TypeError):
        dumps(object())


def test_loads_round_trips_dumps():
    value = {"a": [1, 2.5, "x", None, True]}
    assert loads(dumps(value)) == value


def test_loads_none_is_none():
    assert loads(None) is None


def test_loads_bad_json_raises_value_error():
    with pytest.raises(json.JSONDecodeError):
        loads("{")


def test_the_error_names_the_argument_s_type():
    with pytest.raises(SerializationError, match=r"argument 0 of t is not JSON-serializable "
                                                 r"\(set: "):
        dump_call("t", ({1, 2},), None)
