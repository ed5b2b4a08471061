"""The dictionary and list blocks of `agentflow.blocks.dict_ops` and `agentflow.blocks.list_ops`: their defaults and
the edge cases (empty and nested lists, unequal lengths, missing keys and indexes, unhashable items). Their own test
cases, ids and pins are checked with every registered block's in tests/unit/test_blocks.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentflow.blocks import Block, BlockContext, BlockRun, execute_block
from agentflow.blocks.dict_ops import (
    DictionaryIsEmptyBlock,
    RemoveFromDictionaryBlock,
    ReplaceDictionaryValueBlock,
    json_key,
    key_text,
)
from agentflow.blocks.list_ops import (
    ConcatenateListsBlock,
    FindInListBlock,
    FlattenListBlock,
    InterleaveListsBlock,
    ListDifferenceBlock,
    ListIntersectionBlock,
    ListIsEmptyBlock,
    RemoveFromListBlock,
    ReplaceListItemBlock,
    ReverseListOrderBlock,
    ZipListsBlock,
)

BLOCKS: list[type[Block]] = [
    RemoveFromDictionaryBlock,
    ReplaceDictionaryValueBlock,
    DictionaryIsEmptyBlock,
    FindInListBlock,
    RemoveFromListBlock,
    ReplaceListItemBlock,
    ListIsEmptyBlock,
    ConcatenateListsBlock,
    FlattenListBlock,
    InterleaveListsBlock,
    ZipListsBlock,
    ListDifferenceBlock,
    ListIntersectionBlock,
    ReverseListOrderBlock,
]
CTX = BlockContext()


def block_name(value: object) -> str | None:
    """A test id: the block's name, or pytest's own id for other parameters."""
    return value.name() if isinstance(value, type) and issubclass(value, Block) else None


def run(block: type[Block], data: dict[str, Any]) -> BlockRun:
    return execute_block(block, data, CTX)


def outputs(block: type[Block], data: dict[str, Any]) -> list[tuple[str, Any]]:
    result = run(block, data)
    assert result.error is None, result.error
    return result.outputs


def error(block: type[Block], data: dict[str, Any]) -> str:
    result = run(block, data)
    assert result.error is not None, f"expected a failure, got {result.outputs}"
    assert result.outputs == [("error", result.error)]  # nothing is yielded before these failures
    return result.error


def test_every_block_has_cases_and_autogpts() -> None:
    for block in BLOCKS:
        assert len(block.test_cases) >= 3, block.name()
        assert any(case.description.startswith("AutoGPT") for case in block.test_cases), block.name()


# -- ids, categories and pins against AutoGPT's (the lines tests/unit/test_blocks.py will hold) ----------------------

DEFAULTS: dict[tuple[str, str], Any] = {
    ("RemoveFromDictionaryBlock", "return_value"): False,
    ("RemoveFromListBlock", "value"): None,
    ("RemoveFromListBlock", "index"): None,
    ("RemoveFromListBlock", "return_item"): False,
    ("ConcatenateListsBlock", "deduplicate"): False,
    ("ConcatenateListsBlock", "remove_none"): False,
    ("FlattenListBlock", "max_depth"): -1,
    ("ZipListsBlock", "pad_to_longest"): False,
    ("ZipListsBlock", "fill_value"): None,
    ("ListDifferenceBlock", "symmetric"): False,
}


@pytest.mark.parametrize(("name", "pin"), sorted(DEFAULTS))
def test_defaults(name: str, pin: str) -> None:
    block = next(block for block in BLOCKS if block.name() == name)
    default = block.Input.model_fields[pin].get_default(call_default_factory=True)
    assert default == DEFAULTS[(name, pin)]
    assert type(default) is type(DEFAULTS[(name, pin)])


def test_lists_of_lists_accept_null_entries_in_their_schema() -> None:
    for block in (ConcatenateListsBlock, InterleaveListsBlock, ZipListsBlock):
        items = block.input_schema()["properties"]["lists"]["items"]
        assert items == {"anyOf": [{"items": {}, "type": "array"}, {"type": "null"}]}, block.name()


# -- empty lists -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "data", "expected"),
    [
        (FindInListBlock, {"list": [], "value": 0}, [("found", False), ("not_found_value", 0)]),
        (ListIsEmptyBlock, {"list": []}, [("is_empty", True)]),
        (DictionaryIsEmptyBlock, {"dictionary": {}}, [("is_empty", True)]),
        (ConcatenateListsBlock, {"lists": [[], []]}, [("concatenated_list", []), ("length", 0)]),
        (ConcatenateListsBlock, {"lists": [[None]], "remove_none": True}, [("concatenated_list", []), ("length", 0)]),
        (FlattenListBlock, {"nested_list": [[], [[]]]}, [("flattened_list", []), ("length", 0), ("original_depth", 3)]),
        (InterleaveListsBlock, {"lists": [[], []]}, [("interleaved_list", []), ("length", 0)]),
        (ZipListsBlock, {"lists": [[], []], "pad_to_longest": True}, [("zipped_list", []), ("length", 0)]),
        (ZipListsBlock, {"lists": [[1, 2], []]}, [("zipped_list", []), ("length", 0)]),
        (ListDifferenceBlock, {"list_a": [], "list_b": [], "symmetric": True}, [("difference", []), ("length", 0)]),
        (ListDifferenceBlock, {"list_a": [1, 1], "list_b": []}, [("difference", [1, 1]), ("length", 2)]),
        (ListIntersectionBlock, {"list_a": [1], "list_b": []}, [("intersection", []), ("length", 0)]),
        (ReverseListOrderBlock, {"input_list": []}, [("reversed_list", [])]),
    ],
    ids=block_name,
)
def test_empty_lists(block: type[Block], data: dict[str, Any], expected: list[tuple[str, Any]]) -> None:
    assert outputs(block, data) == expected


@pytest.mark.parametrize(
    ("block", "data", "message"),
    [
        (ReplaceListItemBlock, {"list": [], "index": 0, "value": 1}, "Index out of range: 0 (the list has 0 items)"),
        (RemoveFromListBlock, {"list": [], "index": -1}, "Index out of range: -1 (the list has 0 items)"),
        (RemoveFromListBlock, {"list": [], "value": 1}, "Value not found in list: 1"),
        (RemoveFromDictionaryBlock, {"dictionary": {}, "key": "k"}, "Key 'k' not found in dictionary"),
    ],
)
def test_nothing_to_change_in_an_empty_collection_fails(block: type[Block], data: dict[str, Any], message: str) -> None:
    assert error(block, data) == message


# -- flatten depth ---------------------------------------------------------------------------------------------------

NESTED = [1, [2, [3, [4, [5]]]], [[6]]]


@pytest.mark.parametrize(
    ("max_depth", "flat"),
    [
        (0, NESTED),
        (1, [1, 2, [3, [4, [5]]], [6]]),
        (2, [1, 2, 3, [4, [5]], 6]),
        (3, [1, 2, 3, 4, [5], 6]),
        (4, [1, 2, 3, 4, 5, 6]),
        (99, [1, 2, 3, 4, 5, 6]),
        (-1, [1, 2, 3, 4, 5, 6]),
    ],
)
def test_flatten_opens_max_depth_levels(max_depth: int, flat: list[Any]) -> None:
    result = outputs(FlattenListBlock, {"nested_list": NESTED, "max_depth": max_depth})
    assert result == [("flattened_list", flat), ("length", len(flat)), ("original_depth", 5)]


def test_flatten_keeps_objects_and_nulls_as_items() -> None:
    result = outputs(FlattenListBlock, {"nested_list": [{"a": [1, [2]]}, [None, [[]]], "[3]"]})
    assert result == [("flattened_list", [{"a": [1, [2]]}, None, "[3]"]), ("length", 3), ("original_depth", 4)]


def test_flatten_far_beyond_the_recursion_limit() -> None:
    deepest: list[Any] = ["leaf"]
    nested: list[Any] = deepest
    for _ in range(5_000):
        nested = [nested, 0]
    result = outputs(FlattenListBlock, {"nested_list": nested})
    assert result[0] == ("flattened_list", ["leaf", *[0] * 5_000])
    assert result[2] == ("original_depth", 5_001)


def test_flatten_refuses_a_depth_below_minus_one() -> None:
    message = error(FlattenListBlock, {"nested_list": [[1]], "max_depth": -5})
    assert message == "max_depth must be -1 (unlimited) or a non-negative integer, got -5"


# -- unequal lengths: zip and interleave -----------------------------------------------------------------------------

UNEQUAL = [[1, 2, 3, 4], ["a"], ["x", "y"]]


def test_zip_truncates_to_the_shortest_list() -> None:
    assert outputs(ZipListsBlock, {"lists": UNEQUAL}) == [("zipped_list", [[1, "a", "x"]]), ("length", 1)]


def test_zip_pads_to_the_longest_list() -> None:
    result = outputs(ZipListsBlock, {"lists": UNEQUAL, "pad_to_longest": True, "fill_value": "-"})
    groups = [[1, "a", "x"], [2, "-", "y"], [3, "-", "-"], [4, "-", "-"]]
    assert result == [("zipped_list", groups), ("length", 4)]


def test_zip_pads_with_null_by_default_and_keeps_null_items() -> None:
    result = outputs(ZipListsBlock, {"lists": [[None, 1], [2]], "pad_to_longest": True})
    assert result == [("zipped_list", [[None, 2], [1, None]]), ("length", 2)]


def test_zip_pads_with_a_structured_fill_value() -> None:
    result = outputs(ZipListsBlock, {"lists": [[1, 2], [3]], "pad_to_longest": True, "fill_value": {"x": [0]}})
    assert result == [("zipped_list", [[1, 3], [2, {"x": [0]}]]), ("length", 2)]


def test_zip_of_one_list_groups_each_item() -> None:
    assert outputs(ZipListsBlock, {"lists": [[1, 2]]}) == [("zipped_list", [[1], [2]]), ("length", 2)]


def test_interleave_lets_exhausted_lists_drop_out() -> None:
    result = outputs(InterleaveListsBlock, {"lists": UNEQUAL})
    assert result == [("interleaved_list", [1, "a", "x", 2, "y", 3, 4]), ("length", 7)]


def test_interleave_keeps_null_items_of_shorter_lists() -> None:
    result = outputs(InterleaveListsBlock, {"lists": [[None], [1, None, 2]]})
    assert result == [("interleaved_list", [None, 1, None, 2]), ("length", 4)]


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (ConcatenateListsBlock, [("concatenated_list", [1, 2, "a"]), ("length", 3)]),
        (InterleaveListsBlock, [("interleaved_list", [1, "a", 2]), ("length", 3)]),
        (ZipListsBlock, [("zipped_list", [[1, "a"]]), ("length", 1)]),
    ],
)
def test_null_lists_are_skipped(block: type[Block], expected: list[tuple[str, Any]]) -> None:
    # A gap between dynamic pins leaves a null entry: it is no list, so it must not become [null] nor truncate a zip.
    assert outputs(block, {"lists_$_0": [1, 2], "lists_$_3": ["a"]}) == expected
    assert outputs(block, {"lists": [[1, 2], None, ["a"]]}) == expected


def test_a_non_list_entry_is_coerced_to_a_list() -> None:
    result = outputs(ConcatenateListsBlock, {"lists": [[1], 2, "x", "[3, 4]", {"k": 5}]})
    assert result == [("concatenated_list", [1, 2, "x", 3, 4, ["k", 5]]), ("length", 6)]


# -- missing keys and indexes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [RemoveFromDictionaryBlock, ReplaceDictionaryValueBlock])
@pytest.mark.parametrize(
    ("key", "message"),
    [("b", "Key 'b' not found in dictionary"), (2, "Key '2' not found in dictionary"), ("", "Key '' not found")],
)
def test_a_missing_dictionary_key_fails_naming_it(block: type[Block], key: Any, message: str) -> None:
    assert message in error(block, {"dictionary": {"a": 1, "1": 2}, "key": key, "value": 0})


def test_a_number_key_finds_its_json_text() -> None:
    data = {"dictionary": {"10": "ten", "1": "one"}, "key": 1, "value": "uno", "return_value": True}
    assert outputs(RemoveFromDictionaryBlock, data) == [("updated_dictionary", {"10": "ten"}), ("removed_value", "one")]
    assert outputs(ReplaceDictionaryValueBlock, data) == [
        ("updated_dictionary", {"10": "ten", "1": "uno"}),
        ("old_value", "one"),
    ]


def test_a_list_coerced_to_a_dictionary_is_keyed_by_index() -> None:
    # The coercion gives {0: "p", 1: "q"}: the text key "1" still finds the number key 1.
    data = {"dictionary": ["p", "q"], "key": "1", "value": "r"}
    assert outputs(ReplaceDictionaryValueBlock, data) == [
        ("updated_dictionary", {"0": "p", "1": "r"}),
        ("old_value", "q"),
    ]


def test_a_text_key_is_not_trimmed_or_case_folded() -> None:
    assert "Key 'A' not found" in error(RemoveFromDictionaryBlock, {"dictionary": {"a": 1}, "key": "A"})
    assert "Key 'a ' not found" in error(RemoveFromDictionaryBlock, {"dictionary": {"a": 1}, "key": "a "})


@pytest.mark.parametrize(
    ("index", "message"),
    [(3, "Index out of range: 3 (the list has 3 items)"), (-4, "Index out of range: -4 (the list has 3 items)")],
)
def test_an_index_out_of_range_fails_naming_it(index: int, message: str) -> None:
    assert error(ReplaceListItemBlock, {"list": [1, 2, 3], "index": index, "value": 0}) == message
    assert error(RemoveFromListBlock, {"list": [1, 2, 3], "index": index}) == message


@pytest.mark.parametrize(("index", "expected"), [(0, [9, 2, 3]), (-3, [9, 2, 3]), (2, [1, 2, 9]), (-1, [1, 2, 9])])
def test_replace_at_both_ends(index: int, expected: list[int]) -> None:
    assert outputs(ReplaceListItemBlock, {"list": [1, 2, 3], "index": index, "value": 9})[0] == (
        "updated_list",
        expected,
    )


def test_remove_by_index_at_both_ends() -> None:
    assert outputs(RemoveFromListBlock, {"list": [1, 2, 3], "index": 0}) == [("updated_list", [2, 3])]
    assert outputs(RemoveFromListBlock, {"list": [1, 2, 3], "index": -3}) == [("updated_list", [2, 3])]
    assert outputs(RemoveFromListBlock, {"list": [1, 2, 3], "index": 2}) == [("updated_list", [1, 2])]
    assert outputs(RemoveFromListBlock, {"list": [1, 2, 3], "index": -1}) == [("updated_list", [1, 2])]


def test_a_missing_value_fails_showing_it_as_json_and_shortened() -> None:
    assert error(RemoveFromListBlock, {"list": [1], "value": {"k": [True, None]}}) == (
        'Value not found in list: {"k": [true, null]}'
    )
    long_message = error(RemoveFromListBlock, {"list": [1], "value": "x" * 500})
    assert long_message.endswith("...")
    assert len(long_message) == len("Value not found in list: ") + 100


def test_remove_needs_an_index_or_a_value() -> None:
    assert error(RemoveFromListBlock, {"list": [1, None]}) == "No index or value provided for removal"
    assert error(RemoveFromListBlock, {"list": [1, None], "value": None}) == "No index or value provided for removal"


def test_removed_item_and_value_are_yielded_only_when_asked() -> None:
    assert outputs(RemoveFromListBlock, {"list": [0, 1], "value": 0, "return_item": True}) == [
        ("updated_list", [1]),
        ("removed_item", 0),
    ]
    assert outputs(RemoveFromDictionaryBlock, {"dictionary": {"k": False}, "key": "k", "return_value": True}) == [
        ("updated_dictionary", {}),
        ("removed_value", False),
    ]


def test_not_found_is_an_output_not_a_failure() -> None:
    assert outputs(FindInListBlock, {"list": [[1]], "value": [1, 2]}) == [("found", False), ("not_found_value", [1, 2])]


# -- unhashable items and JSON equality ------------------------------------------------------------------------------


def test_difference_of_unhashable_items_compares_content() -> None:
    list_a = [{"a": 1, "b": [1, 2]}, [1, [2]], {"a": 2}, [[]]]
    list_b = [{"b": [1, 2], "a": 1}, [1, [2]]]  # same objects, keys in another order
    assert outputs(ListDifferenceBlock, {"list_a": list_a, "list_b": list_b}) == [
        ("difference", [{"a": 2}, [[]]]),
        ("length", 2),
    ]


def test_symmetric_difference_keeps_each_sides_order_and_duplicates() -> None:
    data = {"list_a": [[1], {"x": 1}, [1]], "list_b": [{"x": 2}, {"x": 1}, {"x": 2}], "symmetric": True}
    assert outputs(ListDifferenceBlock, data) == [("difference", [[1], [1], {"x": 2}, {"x": 2}]), ("length", 4)]


def test_intersection_of_unhashable_items_compares_content() -> None:
    list_a = [{"k": {"n": [1]}}, [1, 2], {"k": {"n": [1]}}, [2, 1], {}]
    list_b = [[2, 1], {"k": {"n": [1]}}, []]
    assert outputs(ListIntersectionBlock, {"list_a": list_a, "list_b": list_b}) == [
        ("intersection", [{"k": {"n": [1]}}, [2, 1]]),
        ("length", 2),
    ]


def test_deduplicate_unhashable_items_keeps_first_occurrences() -> None:
    data = {"lists": [[{"a": [1]}, [1]], [{"a": [1]}, [1], [[1]]]], "deduplicate": True}
    assert outputs(ConcatenateListsBlock, data) == [("concatenated_list", [{"a": [1]}, [1], [[1]]]), ("length", 3)]


def test_remove_none_then_deduplicate() -> None:
    data = {"lists": [[None, 1], [None, 1, "None", "null"]], "deduplicate": True, "remove_none": True}
    assert outputs(ConcatenateListsBlock, data) == [("concatenated_list", [1, "None", "null"]), ("length", 3)]
    data["remove_none"] = False
    assert outputs(ConcatenateListsBlock, data) == [("concatenated_list", [None, 1, "None", "null"]), ("length", 4)]


def test_booleans_are_not_numbers() -> None:
    assert outputs(ListIntersectionBlock, {"list_a": [1, 0, True, False], "list_b": [True, 0]}) == [
        ("intersection", [0, True]),
        ("length", 2),
    ]
    assert outputs(FindInListBlock, {"list": [0, False], "value": False}) == [("index", 1), ("found", True)]
    assert outputs(FindInListBlock, {"list": [1.0], "value": 1}) == [("index", 0), ("found", True)]


def test_objects_built_by_attribute_pins_compare_as_their_json() -> None:
    data = {"list_a_$_0_@_name": "x", "list_a_$_1": {"name": "y"}, "list_b": [{"name": "x"}]}
    assert outputs(ListDifferenceBlock, data) == [("difference", [{"name": "y"}]), ("length", 1)]
    assert outputs(FindInListBlock, {"list_$_0_@_k": 1, "value": {"k": 1}}) == [("index", 0), ("found", True)]


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        (None, False, False),
        ("1", 1, False),
        ([], {}, False),
        ([["a", 1]], {"a": 1}, False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        ([1, 2], [2, 1], False),
        ([1, 2], (1, 2), True),
        ({"a": [{"b": None}]}, {"a": [{"b": None}]}, True),
        ({"1": "x"}, {1: "x"}, True),
    ],
)
def test_json_key(left: Any, right: Any, equal: bool) -> None:
    assert (json_key(left) == json_key(right)) is equal
    assert hash(json_key(left)) == hash(json_key(left))


@pytest.mark.parametrize(("key", "text"), [("a", "a"), (1, "1"), (1.5, "1.5"), (True, "true"), (None, "null")])
def test_key_text(key: Any, text: str) -> None:
    assert key_text(key) == text


# -- inputs are never changed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "data"),
    [
        (RemoveFromDictionaryBlock, {"dictionary": {"a": [1], "b": 2}, "key": "a"}),
        (ReplaceDictionaryValueBlock, {"dictionary": {"a": [1]}, "key": "a", "value": 3}),
        (RemoveFromListBlock, {"list": [[1], 2], "index": 0}),
        (ReplaceListItemBlock, {"list": [[1], 2], "index": 0, "value": 3}),
        (ConcatenateListsBlock, {"lists": [[1, None], [1]], "deduplicate": True, "remove_none": True}),
        (FlattenListBlock, {"nested_list": [[1, [2]]]}),
        (ZipListsBlock, {"lists": [[1], [2, 3]], "pad_to_longest": True}),
        (ReverseListOrderBlock, {"input_list": [1, [2, 3]]}),
    ],
    ids=block_name,
)
def test_the_input_data_is_not_mutated(block: type[Block], data: dict[str, Any]) -> None:
    before = copy.deepcopy(data)
    outputs(block, data)
    assert data == before
