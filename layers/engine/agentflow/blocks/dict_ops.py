"""Dictionary blocks that remove, replace and check entries (README, "Built-in blocks"), and how JSON values compare.

Values arrive as JSON, whose object keys are always text, so a number key such as `1` finds the entry `"1"`: the
key is compared by the text JSON would write for it (`key_text`), as the engine's output encoding does. `json_key`
(also used by the list blocks) makes any value hashable, equal for equal JSON values.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

from pydantic import Field

from agentflow.blocks.execution import encode_output
from agentflow.blocks.sdk import (
    BlockCategory,
    BlockContext,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
    PureBlock,
)

__all__ = [
    "DictionaryIsEmptyBlock",
    "RemoveFromDictionaryBlock",
    "ReplaceDictionaryValueBlock",
    "json_key",
    "key_text",
]

_BASIC = frozenset({BlockCategory.BASIC})
_MISSING = object()


def key_text(key: Any) -> str:
    """The text a dictionary key has in JSON: `"a"` stays `a`, `1` is `1`, `true` is `true`, `null` is `null`."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


def json_key(value: Any) -> Hashable:
    """A hashable stand-in for a value, equal for equal JSON values (the engine's JSON encoding decides)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("text", value)
    if value is None:
        return ("null",)
    if isinstance(value, (list, tuple)):
        return ("array", tuple(json_key(item) for item in value))
    if isinstance(value, Mapping):
        return ("object", frozenset((key_text(k), json_key(v)) for k, v in value.items()))
    return json_key(encode_output(value))  # `_@_` objects, sets, dates...: compared as the JSON stored for them


def _find_key(dictionary: Mapping[Any, Any], key: str | int) -> Any:
    """The dictionary's own key that matches `key` (as is, else by its JSON text), or `_MISSING`."""
    if isinstance(key, str) and key in dictionary:
        return key
    wanted = key_text(key)
    return next((own for own in dictionary if key_text(own) == wanted), _MISSING)


def _not_found(key: str | int) -> str:
    return f"Key '{key_text(key)}' not found in dictionary"


class RemoveFromDictionaryBlock(PureBlock):
    id = "46afe2ea-c613-43f8-95ff-6692c3ef6876"
    description = "Removes a key-value pair from a dictionary."
    categories = _BASIC

    class Input(BlockSchema):
        dictionary: dict[Any, Any] = Field(description="The dictionary to remove the entry from.")
        key: str | int = Field(description="The key of the entry to remove.")
        return_value: bool = Field(default=False, description="Also yield the removed value on `removed_value`.")

    class Output(BlockSchemaOutput):
        updated_dictionary: dict[Any, Any] = Field(description="A copy of the dictionary without the entry.")
        removed_value: Any = Field(description="The removed value, when `return_value` is set.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        updated = dict(input_data.dictionary)  # a copy: the stored input_default must not change
        own_key = _find_key(updated, input_data.key)
        if own_key is _MISSING:
            yield "error", _not_found(input_data.key)
            return
        removed = updated.pop(own_key)
        yield "updated_dictionary", updated
        if input_data.return_value:
            yield "removed_value", removed

    test_cases = (
        BlockTestCase(
            {"dictionary": {"a": 1, "b": 2, "c": 3}, "key": "b", "return_value": True},
            [("updated_dictionary", {"a": 1, "c": 3}), ("removed_value", 2)],
            "AutoGPT: removes and returns the value",
        ),
        BlockTestCase(
            {"dictionary": {"x": "hello", "y": "world"}, "key": "x"},
            [("updated_dictionary", {"y": "world"})],
            "AutoGPT: removed_value is yielded only when asked",
        ),
        BlockTestCase(
            {"dictionary": {"k": None}, "key": "k", "return_value": True},
            [("updated_dictionary", {}), ("removed_value", None)],
            "a null value is removed and returned",
        ),
        BlockTestCase(
            {"dictionary": {"1": "one", "2": "two"}, "key": 1},
            [("updated_dictionary", {"2": "two"})],
            "deviation: a number key finds its JSON text",
        ),
        BlockTestCase(
            {"dictionary": ["p", "q"], "key": "0", "return_value": True},
            [("updated_dictionary", {"1": "q"}), ("removed_value", "p")],
            "caveat: a list becomes {index: item}",
        ),
        BlockTestCase(
            {"dictionary": {"a": 1}, "key": "b"}, [], "a missing key fails", error="Key 'b' not found in dictionary"
        ),
        BlockTestCase({"dictionary": {}, "key": 0}, [], "an empty dictionary fails", error="Key '0' not found"),
        BlockTestCase({"key": "a"}, [], "dictionary is required", error="missing required input 'dictionary'"),
        BlockTestCase({"dictionary": {"a": 1}}, [], "key is required", error="missing required input 'key'"),
    )


class ReplaceDictionaryValueBlock(PureBlock):
    id = "27e31876-18b6-44f3-ab97-f6226d8b3889"
    description = "Replaces the value for a specified key in a dictionary."
    categories = _BASIC

    class Input(BlockSchema):
        dictionary: dict[Any, Any] = Field(description="The dictionary to change.")
        key: str | int = Field(description="The key whose value to replace; it must exist.")
        value: Any = Field(description="The new value.")

    class Output(BlockSchemaOutput):
        updated_dictionary: dict[Any, Any] = Field(description="A copy of the dictionary with the new value.")
        old_value: Any = Field(description="The value that was replaced.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        updated = dict(input_data.dictionary)
        own_key = _find_key(updated, input_data.key)
        if own_key is _MISSING:
            yield "error", _not_found(input_data.key)
            return
        old_value = updated[own_key]
        updated[own_key] = input_data.value
        yield "updated_dictionary", updated
        yield "old_value", old_value

    test_cases = (
        BlockTestCase(
            {"dictionary": {"a": 1, "b": 2, "c": 3}, "key": "b", "value": 99},
            [("updated_dictionary", {"a": 1, "b": 99, "c": 3}), ("old_value", 2)],
            "AutoGPT: replaces a number",
        ),
        BlockTestCase(
            {"dictionary": {"x": "hello", "y": "world"}, "key": "y", "value": "universe"},
            [("updated_dictionary", {"x": "hello", "y": "universe"}), ("old_value", "world")],
            "AutoGPT: replaces a text",
        ),
        BlockTestCase(
            {"dictionary": {"k": None}, "key": "k", "value": [1]},
            [("updated_dictionary", {"k": [1]}), ("old_value", None)],
            "a null old value is yielded",
        ),
        BlockTestCase(
            {"dictionary": {"k": 1}, "key": "k", "value": False},
            [("updated_dictionary", {"k": False}), ("old_value", 1)],
            "a falsy new value is set",
        ),
        BlockTestCase(
            {"dictionary": {"7": "seven"}, "key": 7, "value": "sept"},
            [("updated_dictionary", {"7": "sept"}), ("old_value", "seven")],
            "deviation: a number key finds its JSON text",
        ),
        BlockTestCase(
            {"dictionary": {"a": 1}, "key": "b", "value": 2},
            [],
            "a missing key fails instead of adding it",
            error="Key 'b' not found in dictionary",
        ),
        BlockTestCase(
            {"dictionary": {"a": 1}, "key": "a", "value": None},
            [],
            "caveat: null means not given, so value is missing",
            error="missing required input 'value'",
        ),
    )


class DictionaryIsEmptyBlock(PureBlock):
    id = "a3cf3f64-6bb9-4cc6-9900-608a0b3359b0"
    description = "Checks if a dictionary is empty."
    categories = _BASIC

    class Input(BlockSchema):
        dictionary: dict[Any, Any] = Field(description="The dictionary to check.")

    class Output(BlockSchemaOutput):
        is_empty: bool = Field(description="True when the dictionary has no entries.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "is_empty", not input_data.dictionary

    test_cases = (
        BlockTestCase({"dictionary": {}}, [("is_empty", True)], "AutoGPT: empty"),
        BlockTestCase({"dictionary": {"a": 1}}, [("is_empty", False)], "AutoGPT: not empty"),
        BlockTestCase({"dictionary": {"k": None}}, [("is_empty", False)], "a null value is an entry"),
        BlockTestCase({"dictionary": "{}"}, [("is_empty", True)], "JSON text is parsed"),
        BlockTestCase({"dictionary": []}, [("is_empty", True)], "caveat: an empty list becomes {}"),
        BlockTestCase({"dictionary": ""}, [("is_empty", False)], "caveat: text that is not JSON becomes {value: text}"),
        BlockTestCase({}, [], "dictionary is required", error="missing required input 'dictionary'"),
    )
