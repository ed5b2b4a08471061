"""The dictionary, list and conversion blocks: their own test cases (AutoGPT's and ours), their ids and pins against
AutoGPT's, and edge cases run through the engine's `execute_block`: dynamic pins, missing keys, out-of-range and
negative indexes, conversion failures naming the pin, and falsy values kept as they are."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from agentflow.blocks import Block, BlockCategory, BlockContext, BlockRun, BlockType, execute_block
from agentflow.blocks.conversion import PrintToConsoleBlock, TypeOptions, UniversalTypeConverterBlock
from agentflow.blocks.dictionaries import AddToDictionaryBlock, CreateDictionaryBlock, FindInDictionaryBlock
from agentflow.blocks.lists import AddToListBlock, CreateListBlock, GetListItemBlock, estimate_tokens

BLOCKS: list[type[Block]] = [
    CreateDictionaryBlock,
    AddToDictionaryBlock,
    FindInDictionaryBlock,
    CreateListBlock,
    AddToListBlock,
    GetListItemBlock,
    UniversalTypeConverterBlock,
    PrintToConsoleBlock,
]
CTX = BlockContext()


def run(block: type[Block], data: dict[str, Any]) -> BlockRun:
    return execute_block(block, data, CTX)


def outputs(block: type[Block], data: dict[str, Any]) -> list[tuple[str, Any]]:
    result = run(block, data)
    assert result.error is None, result.error
    return result.outputs


def error(block: type[Block], data: dict[str, Any]) -> str:
    result = run(block, data)
    assert result.error is not None, f"expected a failure, got {result.outputs}"
    assert result.outputs[-1] == ("error", result.error)
    return result.error


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name())
def test_every_block_has_autogpt_and_edge_cases(block: type[Block]) -> None:
    assert len(block.test_cases) >= 5
    assert any(case.error for case in block.test_cases), "at least one failure case"


# -- ids, pins and defaults against AutoGPT's ------------------------------------------------------------------

B, D = BlockCategory.BASIC, BlockCategory.DATA
# name: (uuid, module, categories, input pins in order, required inputs, output pins in order)
SPEC: dict[str, tuple[str, str, set[BlockCategory], list[str], set[str], list[str]]] = {
    "CreateDictionaryBlock": (
        "b924ddf4-de4f-4b56-9a85-358930dcbc91",
        "dictionaries",
        {D},
        ["values"],
        {"values"},
        ["error", "dictionary"],
    ),
    "AddToDictionaryBlock": (
        "31d1064e-7446-4693-a7d4-65e5ca1180d1",
        "dictionaries",
        {B},
        ["dictionary", "key", "value", "entries"],
        set(),
        ["error", "updated_dictionary"],
    ),
    "FindInDictionaryBlock": (
        "0e50422c-6dee-4145-83d6-3a5a392f65de",
        "dictionaries",
        {B},
        ["input", "key"],
        {"input", "key"},
        ["error", "output", "missing"],
    ),
    "CreateListBlock": (
        "a912d5c7-6e00-4542-b2a9-8034136930e4",
        "lists",
        {D},
        ["values", "max_size", "max_tokens"],
        {"values"},
        ["error", "list"],
    ),
    "AddToListBlock": (
        "aeb08fc1-2fc1-4141-bc8e-f758f183a822",
        "lists",
        {B},
        ["list", "entry", "entries", "position"],
        set(),
        ["error", "updated_list"],
    ),
    "GetListItemBlock": (
        "262ca24c-1025-43cf-a578-534e23234e97",
        "lists",
        {B},
        ["list", "index"],
        {"list", "index"},
        ["error", "item"],
    ),
    "UniversalTypeConverterBlock": (
        "95d1b990-ce13-4d88-9737-ba5c2070c97b",
        "conversion",
        {B},
        ["value", "type"],
        {"value", "type"},
        ["error", "value"],
    ),
    "PrintToConsoleBlock": (
        "f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c",
        "conversion",
        {B},
        ["text"],
        {"text"},
        ["error", "output", "status"],
    ),
}


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name())
def test_ids_pins_and_kind_match_autogpt(block: type[Block]) -> None:
    uuid, module, categories, inputs, required, outs = SPEC[block.name()]
    assert block.id == uuid
    assert block.__module__ == f"agentflow.blocks.{module}"
    assert set(block.categories) == categories
    assert block.block_type is BlockType.STANDARD
    assert block.static_output is False
    assert list(block.Input.model_fields) == inputs
    assert block.required_inputs() == required
    assert list(block.Output.model_fields) == outs
    assert block.Output.model_fields["error"].default == ""  # the implicit error pin
    assert block.info()["id"] == uuid


def test_spec_covers_every_block() -> None:
    assert {block.name() for block in BLOCKS} == set(SPEC)
    assert len({block.id for block in BLOCKS}) == len(BLOCKS)


def _default(block: type[Block], pin: str) -> Any:
    return block.Input.model_fields[pin].get_default(call_default_factory=True)


def test_defaults_match_autogpt() -> None:
    assert _default(AddToDictionaryBlock, "dictionary") == {}
    assert _default(AddToDictionaryBlock, "key") == ""
    assert _default(AddToDictionaryBlock, "value") is None
    assert _default(AddToDictionaryBlock, "entries") == {}
    assert _default(CreateListBlock, "max_size") is None
    assert _default(CreateListBlock, "max_tokens") is None
    assert _default(AddToListBlock, "list") == []
    assert _default(AddToListBlock, "entry") is None
    assert _default(AddToListBlock, "entries") == []
    assert _default(AddToListBlock, "position") is None


def test_default_containers_are_fresh_per_run() -> None:
    first = AddToListBlock.Input.model_validate({})
    second = AddToListBlock.Input.model_validate({})
    assert first.list is not second.list
    assert first.entries is not second.entries


def test_input_json_schemas() -> None:
    find = FindInDictionaryBlock.input_schema()["properties"]
    assert find["key"]["anyOf"] == [{"type": "string"}, {"type": "integer"}]
    converter = UniversalTypeConverterBlock.input_schema()
    [ref] = converter["$defs"].values()
    assert ref["enum"] == ["string", "number", "boolean", "list", "dictionary"]
    assert [option.value for option in TypeOptions] == ref["enum"]
    assert CreateListBlock.output_schema()["properties"]["list"]["type"] == "array"


# -- dictionaries ---------------------------------------------------------------------------------------------


def test_create_dictionary_from_nested_dynamic_pins() -> None:
    data = {"values": {"keep": 1}, "values_#_user_#_name": "Ann", "values_#_user_#_ids_$_1": 8}
    assert outputs(CreateDictionaryBlock, data) == [
        ("dictionary", {"keep": 1, "user": {"name": "Ann", "ids": [None, 8]}})
    ]
    assert data["values"] == {"keep": 1}  # the stored input_default is not extended in place


def test_create_dictionary_bad_dynamic_pin_names_the_pin() -> None:
    message = error(CreateDictionaryBlock, {"values_$_x": 1})
    assert message == "invalid input for CreateDictionaryBlock: input 'values_$_x': index must be an integer"


def test_create_dictionary_a_malformed_dynamic_pin_is_not_merged() -> None:
    assert "missing required input 'values'" in error(CreateDictionaryBlock, {"values_#_": 1})


def test_create_dictionary_rejects_a_value_json_cannot_hold() -> None:
    message = error(CreateDictionaryBlock, {"values": {"x": float("nan")}})
    assert message.startswith("output 'dictionary' cannot be stored as JSON")


def test_add_to_dictionary_does_not_change_its_input() -> None:
    original = {"a": 1}
    entries = {"b": 2}
    data = {"dictionary": original, "key": "c", "value": 3, "entries": entries}
    assert outputs(AddToDictionaryBlock, data) == [("updated_dictionary", {"a": 1, "c": 3, "b": 2})]
    assert original == {"a": 1}
    assert entries == {"b": 2}


def test_add_blocks_copy_their_model_input() -> None:
    """The engine hands a validated copy, but a block must not mutate its input model either."""
    built = AddToDictionaryBlock.Input(dictionary={"a": 1}, key="b", value=2)
    assert list(AddToDictionaryBlock().run(built, CTX)) == [("updated_dictionary", {"a": 1, "b": 2})]
    assert built.dictionary == {"a": 1}
    listed = AddToListBlock.Input.model_validate({"list": [1], "entries": [2], "entry": 3})
    assert list(AddToListBlock().run(listed, CTX)) == [("updated_list", [1, 2, 3])]
    assert listed.list == [1]
    assert listed.entries == [2]


@pytest.mark.parametrize("value", [0, 0.0, False, "", [], {}], ids=repr)
def test_add_to_dictionary_keeps_falsy_values(value: Any) -> None:
    [(pin, result)] = outputs(AddToDictionaryBlock, {"key": "k", "value": value})
    assert pin == "updated_dictionary"
    assert result == {"k": value}
    assert type(result["k"]) is type(value)


def test_add_to_dictionary_keeps_insertion_order_with_overrides() -> None:
    data = {"dictionary": {"a": 1, "b": 2}, "key": "c", "value": 3, "entries": {"a": 9, "d": 4}}
    [(_, result)] = outputs(AddToDictionaryBlock, data)
    assert list(result.items()) == [("a", 9), ("b", 2), ("c", 3), ("d", 4)]


def test_add_to_dictionary_dynamic_pins_extend_a_stored_dictionary_but_not_text() -> None:
    data = {"dictionary": {"a": {"x": 1}}, "dictionary_#_a_#_y": 2}
    assert outputs(AddToDictionaryBlock, data) == [("updated_dictionary", {"a": {"x": 1, "y": 2}})]
    # Pins merge before coercion (README, "Concepts"): JSON text is not a dictionary yet, so it is replaced.
    data = {"dictionary": '{"a": {"x": 1}}', "dictionary_#_a_#_y": 2}
    assert outputs(AddToDictionaryBlock, data) == [("updated_dictionary", {"a": {"y": 2}})]


@pytest.mark.parametrize(
    ("source", "key", "expected"),
    [
        ({"a": {"b": 1}}, "a", ("output", {"b": 1})),
        ({"a": 1}, "A", ("missing", {"a": 1})),  # keys are case-sensitive
        ({"": "empty key"}, "", ("output", "empty key")),
        ([10, 20, 30], 2, ("output", 30)),
        ([10, 20, 30], 0, ("output", 10)),
        ([10, 20, 30], -1, ("missing", [10, 20, 30])),
        ([10, 20, 30], -3, ("missing", [10, 20, 30])),
        ([10, 20, 30], 3, ("missing", [10, 20, 30])),
        ([10, 20, 30], 10**30, ("missing", [10, 20, 30])),
        ([], 0, ("missing", [])),
        ([{"k": None}, {"k": 0}], "k", ("output", [None, 0])),
        ([[1], [2]], "k", ("output", [])),
        ("text", "k", None),  # not JSON: fails
        ('"text"', "upper", ("missing", '"text"')),  # a JSON string has no data attributes
        ("null", "k", ("missing", "null")),
        (3, "real", ("missing", 3)),  # nor has a number
    ],
    ids=repr,
)
def test_find_in_dictionary(source: Any, key: str | int, expected: tuple[str, Any] | None) -> None:
    result = run(FindInDictionaryBlock, {"input": source, "key": key})
    if expected is None:
        assert result.error is not None and result.error.startswith("input is not valid JSON:")
    else:
        assert result == BlockRun(outputs=[expected], error=None)


def test_find_in_dictionary_yields_exactly_one_pin() -> None:
    for data in ({"input": {"k": 1}, "key": "k"}, {"input": {}, "key": "k"}, {"input": [1], "key": "k"}):
        assert len(outputs(FindInDictionaryBlock, data)) == 1


def test_find_in_dictionary_reads_objects_built_by_attribute_pins() -> None:
    data = {"input_$_0_@_name": "a", "input_$_1_@_other": "b", "input_$_2_#_name": "c", "key": "name"}
    assert outputs(FindInDictionaryBlock, data) == [("output", ["a", "c"])]
    assert outputs(FindInDictionaryBlock, {"input_@_name": "n", "key": "name"}) == [("output", "n")]
    assert outputs(FindInDictionaryBlock, {"input_@_name": "n", "key": "other"}) == [("missing", {"name": "n"})]


def test_find_in_dictionary_text_key_converted_from_a_number() -> None:
    # A float is not an int: str | int tries str first, so 1.5 becomes the text "1.5" (coercion rules).
    assert outputs(FindInDictionaryBlock, {"input": {"1.5": "x"}, "key": 1.5}) == [("output", "x")]


def test_find_in_dictionary_missing_yields_the_original_text() -> None:
    assert outputs(FindInDictionaryBlock, {"input": '{"a": 1}', "key": "b"}) == [("missing", '{"a": 1}')]


# -- lists ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_size", [1, 2, 3, 7, 8, 50])
def test_create_list_chunks_cover_the_values_in_order(max_size: int) -> None:
    values = list(range(7))
    chunks = [chunk for _, chunk in outputs(CreateListBlock, {"values": values, "max_size": max_size})]
    assert [item for chunk in chunks for item in chunk] == values
    assert all(1 <= len(chunk) <= max_size for chunk in chunks)
    assert len(chunks) == -(-len(values) // max_size)


@pytest.mark.parametrize("max_tokens", [1, 2, 3, 5, 100])
def test_create_list_token_chunks_stay_within_the_limit(max_tokens: int) -> None:
    values = ["alpha", "beta gamma", {"k": "v"}, 12345, "delta epsilon zeta", "", "eta"]
    chunks = [chunk for _, chunk in outputs(CreateListBlock, {"values": values, "max_tokens": max_tokens})]
    assert [item for chunk in chunks for item in chunk] == values
    for chunk in chunks:
        assert chunk, "no empty chunk"
        assert len(chunk) == 1 or sum(estimate_tokens(v) for v in chunk) <= max_tokens


def test_create_list_limits_of_zero_or_null_mean_no_limit() -> None:
    values = [1, 2, 3]
    for limits in ({"max_size": 0, "max_tokens": 0}, {"max_size": None, "max_tokens": None}):
        assert outputs(CreateListBlock, {"values": values, **limits}) == [("list", [1, 2, 3])]


def test_create_list_limit_conversion_is_lossy_like_every_pin() -> None:
    # Engine coercion (README, "Compatibility with AutoGPT"): non-numeric text becomes 0, i.e. no limit.
    assert outputs(CreateListBlock, {"values": [1, 2], "max_size": "abc"}) == [("list", [1, 2])]
    assert outputs(CreateListBlock, {"values": [1, 2, 3], "max_size": "2"}) == [("list", [1, 2]), ("list", [3])]


def test_create_list_negative_limit_names_the_pin() -> None:
    assert error(CreateListBlock, {"values": [1], "max_size": -2}) == "max_size must be 0 (no limit) or more, not -2"
    assert error(CreateListBlock, {"values": [1], "max_tokens": -1}).startswith("max_tokens must be")


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("", 0),
        ("hello", 1),
        ("hello world", 2),
        ("internationalization", 4),
        ("1234567", 3),
        ("...", 1),
        ({"key": "value"}, 6),  # {" key ": " value "}
        (["a", 1], 5),  # [" a ", 1 ]
        (None, 1),  # null
        ("日本語", 2),
    ],
    ids=repr,
)
def test_estimate_tokens(value: Any, tokens: int) -> None:
    assert estimate_tokens(value) == tokens


def test_add_to_list_does_not_change_its_input() -> None:
    original, entries = [1, 2], ["x"]
    data = {"list": original, "entries": entries, "entry": "y", "position": 1}
    assert outputs(AddToListBlock, data) == [("updated_list", [1, "x", "y", 2])]
    assert original == [1, 2]
    assert entries == ["x"]


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (-(10**30), "xabc"),
        (-4, "xabc"),
        (-3, "xabc"),
        (-2, "axbc"),
        (-1, "abxc"),
        (0, "xabc"),
        (1, "axbc"),
        (2, "abxc"),
        (3, "abcx"),
        (4, "abcx"),
        (10**30, "abcx"),
    ],
)
def test_add_to_list_positions_follow_slice_semantics(position: int, expected: str) -> None:
    data = {"list": ["a", "b", "c"], "entry": "x", "position": position}
    assert outputs(AddToListBlock, data) == [("updated_list", list(expected))]


def test_add_to_list_entry_alone_and_position_from_text() -> None:
    assert outputs(AddToListBlock, {"list": [1, 2], "entry": 9, "position": "1"}) == [("updated_list", [1, 9, 2])]
    assert outputs(AddToListBlock, {"list": [1], "entries": [], "entry": None}) == [("updated_list", [1])]


@pytest.mark.parametrize(("index", "item"), [(0, "a"), (2, "c"), (-1, "c"), (-3, "a")])
def test_get_list_item(index: int, item: str) -> None:
    assert outputs(GetListItemBlock, {"list": ["a", "b", "c"], "index": index}) == [("item", item)]


@pytest.mark.parametrize("index", [3, 4, -4, 10**30, -(10**30)])
def test_get_list_item_out_of_range_fails_clearly(index: int) -> None:
    message = error(GetListItemBlock, {"list": ["a", "b", "c"], "index": index})
    assert message == f"Index out of range: {index} (the list has 3 items)"
    assert run(GetListItemBlock, {"list": ["a", "b", "c"], "index": index}).outputs == [("error", message)]


def test_get_list_item_counts_one_item() -> None:
    assert error(GetListItemBlock, {"list": ["a"], "index": 1}) == "Index out of range: 1 (the list has 1 item)"


@pytest.mark.parametrize("item", [0, 0.0, False, "", [], {}, None], ids=repr)
def test_get_list_item_keeps_falsy_items(item: Any) -> None:
    [(pin, value)] = outputs(GetListItemBlock, {"list": [item, "other"], "index": 0})
    assert pin == "item"
    assert value == item
    assert type(value) is type(item)


def test_get_list_item_index_conversion_is_lossy_like_every_pin() -> None:
    # Engine coercion (README, "Compatibility with AutoGPT"): non-numeric text becomes 0, a list its length.
    assert outputs(GetListItemBlock, {"list": ["a", "b", "c"], "index": "abc"}) == [("item", "a")]
    assert outputs(GetListItemBlock, {"list": ["a", "b", "c"], "index": [0, 0]}) == [("item", "c")]


# -- conversion -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        ("string", 12, "12"),
        ("string", None, None),  # null is "not given": the required pin is missing
        ("string", [1, {"a": None}], '[1, {"a": null}]'),
        ("number", "  2.5 ", 2.5),
        ("number", "3", 3.0),
        ("number", {"a": 1, "b": 2}, 2.0),
        ("number", False, 0.0),
        ("boolean", "TRUE", True),
        ("boolean", "false", False),
        ("boolean", "", False),
        ("boolean", 0.0, False),
        ("boolean", {}, False),
        ("list", [], []),
        ("list", "", [""]),
        ("list", "[1,", ["[1,"]),
        ("dictionary", {}, {}),
        ("dictionary", "", {"value": ""}),
        ("dictionary", "3", {"value": 3}),
        ("dictionary", False, {"value": False}),
    ],
    ids=repr,
)
def test_universal_type_converter(target: str, value: Any, expected: Any) -> None:
    result = run(UniversalTypeConverterBlock, {"value": value, "type": target})
    if value is None:
        assert result.error == "invalid input for UniversalTypeConverterBlock: missing required input 'value'"
        return
    assert result == BlockRun(outputs=[("value", expected)], error=None)
    assert type(result.outputs[0][1]) is type(expected)


def test_universal_type_converter_failure_names_the_value_and_the_type() -> None:
    message = error(UniversalTypeConverterBlock, {"value_@_secret": "s", "type": "string"})
    assert message.startswith("Failed to convert value: cannot convert SimpleNamespace to str")
    for text in ("nan", "-inf", "1e999"):
        assert error(UniversalTypeConverterBlock, {"value": text, "type": "number"}) == (
            f"Failed to convert value: {text!r} is not a finite number"
        )


def test_universal_type_converter_unknown_type_names_the_pin() -> None:
    message = error(UniversalTypeConverterBlock, {"value": 1, "type": "int"})
    assert message.startswith("invalid input for UniversalTypeConverterBlock: input 'type': Input should be 'string'")


def test_universal_type_converter_object_from_attribute_pins() -> None:
    assert outputs(UniversalTypeConverterBlock, {"value_@_a": 1, "type": "list"}) == [("value", [{"a": 1}])]


def test_print_to_console_prints_and_logs_nothing(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = outputs(PrintToConsoleBlock, {"text": "s3cr3t-value"})
    assert result == [("output", "s3cr3t-value"), ("status", "printed")]
    captured = capsys.readouterr()
    assert "s3cr3t-value" not in captured.out + captured.err
    assert "s3cr3t-value" not in caplog.text
