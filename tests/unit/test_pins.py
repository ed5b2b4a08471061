"""Dynamic pins (README, "Concepts"): base names, merging flattened inputs, selecting inside outputs."""

from __future__ import annotations

import types
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentflow.pins import DynamicPinError, base_name, is_dynamic, merge_execution_input, select_output, tokenize

# -- base names and tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "expected"),
    [
        ("values", "values"),
        ("values_#_name", "values"),
        ("items_$_0", "items"),
        ("obj_@_attr", "obj"),
        ("values_#_a_$_1", "values"),
        ("a_$_0_#_b", "a"),  # the earliest delimiter wins, whatever its kind
        ("prompt_values_#_style", "prompt_values"),
        ("plain_name_with_underscores", "plain_name_with_underscores"),
        ("_#_x", ""),
    ],
)
def test_base_name(pin: str, expected: str) -> None:
    assert base_name(pin) == expected
    assert is_dynamic(pin) == (pin != expected)


def test_tokenize() -> None:
    assert tokenize("_#_a_$_1_@_b") == [("_#_", "a"), ("_$_", "1"), ("_@_", "b")]
    assert tokenize("_#_first name") == [("_#_", "first name")]  # spaces and plain underscores are fine
    assert tokenize("_#_snake_case") == [("_#_", "snake_case")]
    assert tokenize("_#_") is None
    assert tokenize("_#__$_1") is None
    assert tokenize("x_#_a") is None


# -- §3.1 merge -------------------------------------------------------------------------------------------


def test_merge_example_from_blocks_md() -> None:
    merged = merge_execution_input({"values": {}, "values_#_name": "Bob", "values_#_tags_$_1": "x"})
    assert merged["values"] == {"name": "Bob", "tags": [None, "x"]}


def test_plain_keys_are_copied() -> None:
    assert merge_execution_input({"a": 1, "b": [2]}) == {"a": 1, "b": [2]}


def test_flattened_keys_stay() -> None:
    merged = merge_execution_input({"items_$_0": "a", "items_$_1": "b"})
    assert merged == {"items_$_0": "a", "items_$_1": "b", "items": ["a", "b"]}


def test_list_pads_with_none() -> None:
    assert merge_execution_input({"items_$_0": "v0", "items_$_2": "v2"})["items"] == ["v0", None, "v2"]
    assert merge_execution_input({"items_$_2": "v2", "items_$_0": "v0"})["items"] == ["v0", None, "v2"]


def test_non_integer_index_raises() -> None:
    with pytest.raises(ValueError, match=r"^index must be an integer$") as info:
        merge_execution_input({"items_$_first": 1})
    assert isinstance(info.value, DynamicPinError)
    assert info.value.key == "items_$_first"


def test_negative_index_uses_python_semantics() -> None:
    assert merge_execution_input({"items": [1, 2], "items_$_-1": 9})["items"] == [1, 9]
    with pytest.raises(IndexError) as info:
        merge_execution_input({"items_$_-1": 9})
    assert isinstance(info.value, DynamicPinError)
    assert info.value.key == "items_$_-1"


def test_dict_keys_and_nesting() -> None:
    merged = merge_execution_input({"v_#_a_#_b": 1, "v_#_a_#_c": 2, "v_#_list_$_0_#_k": 3})
    assert merged["v"] == {"a": {"b": 1, "c": 2}, "list": [{"k": 3}]}


def test_dict_step_replaces_non_dicts() -> None:
    assert merge_execution_input({"v": 5, "v_#_a": 1})["v"] == {"a": 1}
    assert merge_execution_input({"v": [["x", 1]], "v_#_a": 1})["v"] == {"a": 1}  # a list has no .items


def test_list_step_converts_iterables() -> None:
    assert merge_execution_input({"v": (1, 2), "v_$_2": 3})["v"] == [1, 2, 3]
    assert merge_execution_input({"v": "ab", "v_$_2": "c"})["v"] == ["a", "b", "c"]
    assert merge_execution_input({"v": 5, "v_$_0": 1})["v"] == [1]


def test_object_step_builds_a_generic_object() -> None:
    merged = merge_execution_input({"obj_@_name": "n", "obj_@_inner_@_x": 1, "obj_@_tags_$_0": "t"})
    obj = merged["obj"]
    assert isinstance(obj, types.SimpleNamespace)
    assert obj.name == "n"
    assert obj.inner.x == 1
    assert obj.tags == ["t"]
    assert merge_execution_input({"obj": 5, "obj_@_a": 1})["obj"] == types.SimpleNamespace(a=1)
    with pytest.raises(DynamicPinError, match="cannot set attribute") as info:
        merge_execution_input({"obj_@___class__": 1})
    assert info.value.key == "obj_@___class__"


@pytest.mark.parametrize("key", ["values_#_", "values_#__#_a", "items_$_", "obj_@_", "values_#__$_1"])
def test_malformed_keys_are_kept_verbatim(key: str) -> None:
    merged = merge_execution_input({key: 1})
    assert merged == {key: 1}
    assert base_name(key) not in merged


def test_order_matters_stored_dict_is_extended_and_overwritten() -> None:
    merged = merge_execution_input({"values": {"a": 1, "b": 2}, "values_#_b": 20, "values_#_c": 3})
    assert merged["values"] == {"a": 1, "b": 20, "c": 3}


def test_order_matters_a_later_plain_key_replaces_what_was_built() -> None:
    merged = merge_execution_input({"values_#_a": 1, "values": {"z": 0}})
    assert merged["values"] == {"z": 0}
    assert merged["values_#_a"] == 1


def test_merge_does_not_mutate_its_input() -> None:
    stored = {"a": 1}
    items = [1]
    data = {"values": stored, "values_#_b": 2, "items": items, "items_$_3": 4}
    merged = merge_execution_input(data)
    assert merged["values"] == {"a": 1, "b": 2}
    assert merged["items"] == [1, None, None, 4]
    assert stored == {"a": 1}
    assert items == [1]
    assert set(data) == {"values", "values_#_b", "items", "items_$_3"}


@given(st.dictionaries(st.integers(0, 30), st.integers(), min_size=1, max_size=10))
def test_list_pins_land_at_their_index(pins: dict[int, int]) -> None:
    merged = merge_execution_input({f"items_$_{i}": v for i, v in pins.items()})
    items = merged["items"]
    assert len(items) == max(pins) + 1
    for index, value in enumerate(items):
        assert value == pins.get(index)


# -- §3.2 select ------------------------------------------------------------------------------------------


def test_select_example_from_blocks_md() -> None:
    value = {"user": {"ids": [7, 8]}}
    assert select_output("response", value, "response_#_user_#_ids_$_1") == (True, 8)


def test_exact_pin_passes_the_whole_value_even_none() -> None:
    assert select_output("result", None, "result") == (True, None)
    assert select_output("result", {"a": 1}, "result") == (True, {"a": 1})


@pytest.mark.parametrize(
    ("value", "selector"),
    [
        ({"a": 1}, "other"),  # another pin
        ({"a": 1}, "results"),  # a longer pin name is not a path
        ({"a": 1}, "result_#_"),  # malformed
        ({"a": 1}, "result_#__#_a"),  # malformed
        ({"a": 1}, "result_#_b"),  # missing key
        ({"a": None}, "result_#_a"),  # null is the same as missing
        ([1, 2], "result_#_0"),  # wrong type
        ({"0": 1}, "result_$_0"),  # wrong type
        ([1, 2], "result_$_2"),  # out of range
        ([1, 2], "result_$_-3"),  # out of range, negative
        ([], "result_$_-1"),  # empty list
        ([1, 2], "result_$_x"),  # not an integer
        ("text", "result_$_0"),  # strings are not lists
        ({"a": [1]}, "result_#_a_$_0_#_b"),  # path goes on past a scalar
    ],
)
def test_link_does_not_fire(value: Any, selector: str) -> None:
    assert select_output("result", value, selector) == (False, None)


def test_list_selection() -> None:
    assert select_output("r", [1, 2, 3], "r_$_0") == (True, 1)
    assert select_output("r", [1, 2, 3], "r_$_-1") == (True, 3)
    assert select_output("r", [[0, [5]]], "r_$_0_$_1_$_0") == (True, 5)


def test_dict_keys_are_strings() -> None:
    assert select_output("r", {"1": "one"}, "r_#_1") == (True, "one")
    assert select_output("r", {1: "one"}, "r_#_1") == (False, None)
    assert select_output("r", {"first name": "Ann"}, "r_#_first name") == (True, "Ann")


def test_falsy_values_still_fire() -> None:
    assert select_output("r", {"a": 0}, "r_#_a") == (True, 0)
    assert select_output("r", {"a": ""}, "r_#_a") == (True, "")
    assert select_output("r", [False], "r_$_0") == (True, False)


def test_attribute_selection() -> None:
    obj = types.SimpleNamespace(name="n", inner=types.SimpleNamespace(x=1))
    assert select_output("o", obj, "o_@_name") == (True, "n")
    assert select_output("o", obj, "o_@_inner_@_x") == (True, 1)
    assert select_output("o", obj, "o_@_missing") == (False, None)
    # Stored outputs are JSON, so a model yielded by a block arrives as a dict: `_@_` reads its key.
    assert select_output("o", {"name": "n"}, "o_@_name") == (True, "n")
    # Never methods or private attributes.
    assert select_output("o", {"a": 1}, "o_@_keys") == (False, None)
    assert select_output("o", obj, "o_@___class__") == (False, None)
