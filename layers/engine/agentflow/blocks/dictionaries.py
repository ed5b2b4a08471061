"""Dictionary blocks: build, extend and look up dictionaries (README, "Built-in blocks").

Their values arrive as JSON, so dictionary keys are always strings; `_#_` dynamic pins (`values_#_name`) build
a dictionary pin key by key and `_@_` pins build attribute objects (README, "Concepts").
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from agentflow.blocks.sdk import (
    BlockCategory,
    BlockContext,
    BlockError,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
    PureBlock,
)

__all__ = ["AddToDictionaryBlock", "CreateDictionaryBlock", "FindInDictionaryBlock"]

_BASIC = frozenset({BlockCategory.BASIC})


class CreateDictionaryBlock(PureBlock):
    id = "b924ddf4-de4f-4b56-9a85-358930dcbc91"
    description = "Creates a dictionary from key-value pairs, usually given one `values_#_<key>` pin per key."
    categories = frozenset({BlockCategory.DATA})

    class Input(BlockSchema):
        values: dict[str, Any] = Field(description="Key-value pairs to create the dictionary with.")

    class Output(BlockSchemaOutput):
        dictionary: dict[str, Any] = Field(description="The created dictionary.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "dictionary", input_data.values

    test_cases = (
        BlockTestCase(
            {"values": {"name": "Alice", "age": 25, "city": "New York"}},
            [("dictionary", {"name": "Alice", "age": 25, "city": "New York"})],
            "AutoGPT: strings and numbers",
        ),
        BlockTestCase(
            {"values": {"numbers": [1, 2, 3], "active": True, "score": 95.5}},
            [("dictionary", {"numbers": [1, 2, 3], "active": True, "score": 95.5})],
            "AutoGPT: lists, booleans and floats",
        ),
        BlockTestCase(
            {"values_#_name": "Bob", "values_#_tags_$_1": "x"},
            [("dictionary", {"name": "Bob", "tags": [None, "x"]})],
            "built from dynamic pins",
        ),
        BlockTestCase(
            {"values": {"a": 1, "b": 2}, "values_#_b": 3},
            [("dictionary", {"a": 1, "b": 3})],
            "a dynamic pin overrides the stored key",
        ),
        BlockTestCase(
            {"values": {"zero": 0, "no": False, "empty": "", "list": [], "dict": {}}},
            [("dictionary", {"zero": 0, "no": False, "empty": "", "list": [], "dict": {}})],
            "falsy values are kept",
        ),
        BlockTestCase({"values": {}}, [("dictionary", {})], "an empty dictionary"),
        BlockTestCase({"values": '{"k": 1}'}, [("dictionary", {"k": 1})], "JSON text is parsed"),
        BlockTestCase({"values": ["p", "q"]}, [("dictionary", {"0": "p", "1": "q"})], "a list becomes {index: item}"),
        BlockTestCase({"values": "plain"}, [("dictionary", {"value": "plain"})], "plain text becomes {value: text}"),
        BlockTestCase({}, [], "values is required", error="missing required input 'values'"),
    )


class AddToDictionaryBlock(PureBlock):
    id = "31d1064e-7446-4693-a7d4-65e5ca1180d1"
    description = "Adds `key: value` and then every entry of `entries` to a copy of a dictionary (a new one if none)."
    categories = _BASIC

    class Input(BlockSchema):
        dictionary: dict[Any, Any] = Field(default_factory=dict, description="The dictionary to add to.")
        key: str = Field(default="", description="The key of the new entry (ignored when empty).")
        value: Any = Field(default=None, description="The value of the new entry (ignored when missing).")
        entries: dict[Any, Any] = Field(default_factory=dict, description="Entries to add; they override `key`.")

    class Output(BlockSchemaOutput):
        updated_dictionary: dict[Any, Any] = Field(description="The dictionary with the entries added.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        updated = dict(input_data.dictionary)  # a copy: the stored input_default must not change
        # `value` is None only when missing (null means "not given"); 0, False and "" are real values.
        if input_data.value is not None and input_data.key:
            updated[input_data.key] = input_data.value
        updated.update(input_data.entries)
        yield "updated_dictionary", updated

    test_cases = (
        BlockTestCase(
            {"dictionary": {"existing_key": "existing_value"}, "key": "new_key", "value": "new_value"},
            [("updated_dictionary", {"existing_key": "existing_value", "new_key": "new_value"})],
            "AutoGPT: adds a key",
        ),
        BlockTestCase(
            {"key": "first_key", "value": "first_value"},
            [("updated_dictionary", {"first_key": "first_value"})],
            "AutoGPT: a new dictionary when none is given",
        ),
        BlockTestCase(
            {
                "dictionary": {"existing_key": "existing_value"},
                "entries": {"new_key": "new_value", "first_key": "first_value"},
            },
            [
                (
                    "updated_dictionary",
                    {"existing_key": "existing_value", "new_key": "new_value", "first_key": "first_value"},
                )
            ],
            "AutoGPT: batch entries",
        ),
        BlockTestCase(
            {"dictionary": {"a": 1}, "key": "a", "value": 2, "entries": {"a": 3}},
            [("updated_dictionary", {"a": 3})],
            "entries override key and value",
        ),
        BlockTestCase(
            {"key": "k", "value": 0}, [("updated_dictionary", {"k": 0})], "a falsy 0 value is added faithfully"
        ),
        BlockTestCase(
            {"key": "k", "value": False}, [("updated_dictionary", {"k": False})], "a falsy False value is added"
        ),
        BlockTestCase({"key": "k", "value": ""}, [("updated_dictionary", {"k": ""})], "an empty-text value is added"),
        BlockTestCase(
            {"dictionary": {"a": 1}, "key": "k"}, [("updated_dictionary", {"a": 1})], "a missing value adds nothing"
        ),
        BlockTestCase(
            {"dictionary": {"a": 1}, "key": "k", "value": None},
            [("updated_dictionary", {"a": 1})],
            "a null value is missing",
        ),
        BlockTestCase({"key": "", "value": 1}, [("updated_dictionary", {})], "an empty key adds nothing"),
        BlockTestCase({"entries": {"k": None}}, [("updated_dictionary", {"k": None})], "entries may hold a null value"),
        BlockTestCase(
            {"dictionary": '{"a": 1}', "key": "b", "value": 2},
            [("updated_dictionary", {"a": 1, "b": 2})],
            "JSON text as the dictionary is parsed",
        ),
        BlockTestCase(
            {"entries_#_x": 1, "entries_#_y": [2]},
            [("updated_dictionary", {"x": 1, "y": [2]})],
            "entries from dynamic pins",
        ),
        BlockTestCase({"key": 7, "value": "seven"}, [("updated_dictionary", {"7": "seven"})], "a number key is text"),
        BlockTestCase({}, [("updated_dictionary", {})], "nothing given yields an empty dictionary"),
        BlockTestCase(
            {"entries_$_x": 1}, [], "a bad dynamic pin fails, naming it", error="input 'entries_$_x': index must be"
        ),
    )


class FindInDictionaryBlock(PureBlock):
    id = "0e50422c-6dee-4145-83d6-3a5a392f65de"
    description = "Looks up a key in a dictionary, an index in a list, or a key in each dictionary of a list."
    categories = _BASIC

    class Input(BlockSchema):
        input: Any = Field(description="The dictionary, list or object to look in (JSON text is parsed).")
        key: str | int = Field(description="The key, list index (0 or more) or attribute to look up.")

    class Output(BlockSchemaOutput):
        output: Any = Field(description="The value found.")
        missing: Any = Field(description="The input, unchanged, when the key is not found.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        found, value = _lookup(_parsed(input_data.input), input_data.key)
        if found:
            yield "output", value
        else:
            yield "missing", input_data.input

    test_cases = (
        BlockTestCase(
            {"input": {"apple": 1, "banana": 2, "cherry": 3}, "key": "banana"}, [("output", 2)], "AutoGPT: a key"
        ),
        BlockTestCase(
            {"input": {"x": 10, "y": 20, "z": 30}, "key": "w"},
            [("missing", {"x": 10, "y": 20, "z": 30})],
            "AutoGPT: a missing key yields the input on missing",
        ),
        BlockTestCase({"input": [1, 2, 3], "key": 1}, [("output", 2)], "AutoGPT: a list index"),
        BlockTestCase({"input": [1, 2, 3], "key": 3}, [("missing", [1, 2, 3])], "AutoGPT: an index out of range"),
        BlockTestCase(
            {"input_@_value": "!!", "input_@_key": "key", "key": "key"},
            [("output", "key")],
            "AutoGPT: an attribute of an object built by `_@_` pins",
        ),
        BlockTestCase(
            {"input": [{"k1": "v1"}, {"k2": "v2"}, {"k1": "v3"}], "key": "k1"},
            [("output", ["v1", "v3"])],
            "AutoGPT: a key plucked from each dictionary of a list",
        ),
        BlockTestCase({"input": [1, 2, 3], "key": -1}, [("missing", [1, 2, 3])], "a negative index is not allowed"),
        BlockTestCase({"input": [5, 6], "key": "1"}, [("output", [])], "a numeric text key is not an index"),
        BlockTestCase({"input": [], "key": "k"}, [("output", [])], "a text key in an empty list"),
        BlockTestCase({"input": {"1": "one"}, "key": 1}, [("missing", {"1": "one"})], "a number key is not text"),
        BlockTestCase({"input": '{"a": {"b": 1}}', "key": "a"}, [("output", {"b": 1})], "JSON text is parsed"),
        BlockTestCase({"input": "[7, 8]", "key": 0}, [("output", 7)], "a JSON list is parsed"),
        BlockTestCase({"input": "5", "key": "k"}, [("missing", "5")], "a JSON scalar misses, yielding the text"),
        BlockTestCase({"input": "not json", "key": "k"}, [], "invalid JSON fails", error="input is not valid JSON"),
        BlockTestCase({"input": {"k": 0}, "key": "k"}, [("output", 0)], "a falsy 0 is found"),
        BlockTestCase({"input": {"k": None}, "key": "k"}, [("output", None)], "a null value is found"),
        BlockTestCase({"input": [False, ""], "key": 0}, [("output", False)], "a falsy item is found"),
        BlockTestCase({"input": {}, "key": "k"}, [("missing", {})], "an empty dictionary misses"),
        BlockTestCase({"input": 0, "key": "k"}, [("missing", 0)], "a falsy scalar misses"),
        BlockTestCase(
            {"input": {"a": 1}, "key": "items"},
            [("missing", {"a": 1})],
            "deviation: a dictionary's Python methods are not attributes",
        ),
        BlockTestCase(
            {"input": [{"a": 1}, {"k": 2}, "k", ["k"], 3], "key": "k"},
            [("output", [2])],
            "deviation: every dictionary item counts, whatever the first item is",
        ),
        BlockTestCase({"key": "k"}, [], "input is required", error="missing required input 'input'"),
        BlockTestCase({"input": {}}, [], "key is required", error="missing required input 'key'"),
    )


def _parsed(value: Any) -> Any:
    """Text input holds JSON, as in AutoGPT: invalid JSON fails the node, naming the pin."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise BlockError(f"input is not valid JSON: {exc}") from exc


def _fields(item: Any) -> dict[str, Any] | None:
    """The data keys of a dictionary or of an object built by `_@_` pins; None for anything else.

    Python attributes of JSON values (`dict.items`, `str.upper`, `int.real`) are not data: AutoGPT's getattr
    would return them and fail, or leak them.
    """
    if isinstance(item, dict):
        return item
    if isinstance(item, types.SimpleNamespace):
        return vars(item)
    return None


def _lookup(obj: Any, key: str | int) -> tuple[bool, Any]:
    """AutoGPT's rules, first match wins: a key, a list index, a key plucked from each item, an attribute."""
    if isinstance(obj, dict):
        if key in obj:
            return True, obj[key]
    elif isinstance(obj, list):
        if isinstance(key, int):
            return (True, obj[key]) if 0 <= key < len(obj) else (False, None)
        return True, [fields[key] for item in obj if (fields := _fields(item)) is not None and key in fields]
    if isinstance(key, str) and isinstance(obj, types.SimpleNamespace) and key in vars(obj):
        return True, vars(obj)[key]
    return False, None
