"""Coercion to declared pin types (README, "Compatibility with AutoGPT")."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Annotated, Any, Literal, Optional, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from agentflow.coercion import ConversionError, convert, satisfies

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


class Color(StrEnum):
    RED = "red"


class Model(BaseModel):
    a: int


# -- coerce only when needed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("x", str),
        (3, int),
        (2.5, float),
        (True, bool),
        ([1], list),
        ({"a": 1}, dict),
        (["a", "b"], list[str]),
        ({"k": [1]}, dict[str, list[int]]),
        ((1, "a"), tuple[int, str]),
        (3, str | int),
        (None, str | None),
        ("x", Any),
    ],
)
def test_satisfied_values_pass_through_untouched(value: Any, target: Any) -> None:
    assert satisfies(value, target)
    assert convert(value, target) is value


# -- → str ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, "5"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        ({"a": 1, "b": [1, 2]}, '{"a": 1, "b": [1, 2]}'),
        ([1, "x"], '[1, "x"]'),
        ("héllo", "héllo"),
        (["é"], '["\\u00e9"]'),
    ],
)
def test_to_str_uses_stdlib_json_dumps(value: Any, expected: str) -> None:
    assert convert(value, str) == expected


def test_to_str_of_unserializable_raises_conversion_error() -> None:
    with pytest.raises(ConversionError, match="cannot convert object to str"):
        convert(object(), str)


# -- → int / float ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        ("3.7", int, 3),
        ("-3.7", int, -3),
        (3.9, int, 3),
        ("abc", int, 0),
        ("abc", float, 0.0),
        ("1e3", float, 1000.0),
        (" 4.5 ", float, 4.5),
        (3, float, 3.0),
        ([1, 2], float, 2.0),
        ([1, 2, 3], int, 3),
        ({"a": 1}, int, 1),
        ((1, 2), int, 2),
        ({1, 2, 3, 4}, int, 4),
        (True, float, 1.0),
        ("inf", int, 0),
        ("nan", int, 0),
        ({"a": 1}, float, 1.0),
    ],
)
def test_to_number(value: Any, target: type, expected: Any) -> None:
    result = convert(value, target)
    assert result == expected
    assert type(result) is target


def test_bool_is_already_an_int() -> None:
    assert convert(True, int) is True


# -- → bool -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("yes", False),
        ("false", False),
        ("0", False),
        ("", False),
        (" true", False),
        (1, True),
        (0, False),
        (0.0, False),
        ([], False),
        ([0], True),
        ({}, False),
    ],
)
def test_to_bool(value: Any, expected: bool) -> None:
    assert convert(value, bool) is expected


# -- → list -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, 2), [1, 2]),
        ({3}, [3]),
        ({"a": 1, "b": 2}, [["a", 1], ["b", 2]]),
        ("[1, 2]", [1, 2]),
        ("  [1, 2]  ", [1, 2]),
        ("[not json]", ["[not json]"]),
        (" x ", ["x"]),
        ("x", ["x"]),
        (5, [5]),
        (None, [None]),
        ('["a", {"b": 1}]', ["a", {"b": 1}]),
    ],
)
def test_to_list(value: Any, expected: list[Any]) -> None:
    assert convert(value, list) == expected


# -- → dict -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("[1]", {"value": [1]}),
        ("5", {"value": 5}),
        ("not json", {"value": "not json"}),
        ([5, 6], {0: 5, 1: 6}),
        ((5, 6), {0: 5, 1: 6}),
        (7, {"value": 7}),
        (True, {"value": True}),
    ],
)
def test_to_dict(value: Any, expected: dict[Any, Any]) -> None:
    assert convert(value, dict) == expected


# -- tuple and set ----------------------------------------------------------------------------------------


def test_to_tuple_and_set() -> None:
    assert convert([1, 2], tuple) == (1, 2)
    assert convert("ab", tuple) == ("a", "b")
    assert convert({"a": 1}, tuple) == (("a", 1),)
    assert convert(5, tuple) == (5,)
    assert convert([1, 1, 2], set) == {1, 2}
    assert convert(5, set) == {5}
    assert convert(["1", "2"], tuple[int, float]) == (1, 2.0)
    assert convert(["1", "2"], tuple[int, ...]) == (1, 2)
    with pytest.raises(ConversionError):
        convert([[1]], set)  # lists are unhashable


# -- generic containers are converted element by element ------------------------------------------------


def test_generic_containers_convert_recursively() -> None:
    assert convert([5, {"k": 1}, True, None], list[str]) == ["5", '{"k": 1}', "true", "null"]
    assert convert("[1, 2]", list[str]) == ["1", "2"]
    assert convert([5, 6], dict[str, Any]) == {"0": 5, "1": 6}
    assert convert({"a": "1", "b": "x"}, dict[str, int]) == {"a": 1, "b": 0}
    assert convert({"a": ["1"]}, dict[str, list[float]]) == {"a": [1.0]}
    assert convert('{"n": "2"}', dict[str, int]) == {"n": 2}


def test_only_mismatching_elements_change() -> None:
    inner = ["kept"]
    result = convert([inner, 5], list[list[str]])
    assert result == [["kept"], ["5"]]
    assert result[0] is inner


# -- Optional / Union ------------------------------------------------------------------------------------


def test_optional_converts_to_its_member() -> None:
    assert convert("3.9", int | None) == 3
    assert convert("3.9", Optional[int]) == 3  # noqa: UP045 - both spellings must work
    assert convert(None, int | None) is None
    assert convert(5, str | None) == "5"


def test_union_members_are_tried_in_order() -> None:
    assert convert(2.5, str | int) == "2.5"
    assert convert(2.5, int | str) == 2
    assert convert("7", Union[int, str]) == "7"  # noqa: UP007 - already a str: satisfied, no coercion
    assert convert([[1]], set[Any] | list[Any]) == [[1]]  # the set member raises, the list member wins


def test_annotated_is_unwrapped() -> None:
    assert convert(5, Annotated[str, "meta"]) == "5"
    assert convert(5, Annotated[str, "meta"] | None) == "5"


# -- other types pass through for pydantic ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("2026-05-17", dt.date),
        ("red", Color),
        ({"a": "1"}, Model),
        ("x", Literal["x", "y"]),
        (5, Literal["x"]),
        (["2026-05-17"], list[dt.date]),
    ],
)
def test_other_types_pass_through(value: Any, target: Any) -> None:
    assert convert(value, target) is value


# -- properties -------------------------------------------------------------------------------------------


@given(json_values)
def test_str_of_json_values_is_json_dumps(value: Any) -> None:
    expected = value if isinstance(value, str) else json.dumps(value)
    assert convert(value, str) == expected


@given(json_values, st.sampled_from([str, int, float, bool, list, dict]))
def test_conversion_never_fails_on_json_and_gives_the_target_type(value: Any, target: type) -> None:
    result = convert(value, target)
    assert isinstance(result, target)
    assert satisfies(result, target)


@given(json_values)
def test_conversion_is_idempotent(value: Any) -> None:
    for target in (str, int, float, bool, list, dict, list[str], dict[str, Any]):
        once = convert(value, target)
        assert repr(convert(once, target)) == repr(once)  # repr: "nan" converts to NaN, which != itself
