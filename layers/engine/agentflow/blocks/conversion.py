"""Value conversion and the console debugging block (README, "Built-in blocks")."""

from __future__ import annotations

import math
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import Field

from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
)
from agentflow.coercion import convert

__all__ = ["PrintToConsoleBlock", "TypeOptions", "UniversalTypeConverterBlock"]


class TypeOptions(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    LIST = "list"
    DICTIONARY = "dictionary"


_TARGETS: dict[TypeOptions, type] = {
    TypeOptions.STRING: str,
    TypeOptions.NUMBER: float,
    TypeOptions.BOOLEAN: bool,
    TypeOptions.LIST: list,
    TypeOptions.DICTIONARY: dict,
}


class UniversalTypeConverterBlock(Block):
    id = "95d1b990-ce13-4d88-9737-ba5c2070c97b"
    description = "Converts a value to text, a number, a boolean, a list or a dictionary, as pins coerce inputs."
    categories = frozenset({BlockCategory.BASIC})

    class Input(BlockSchema):
        value: Any = Field(description="The value to convert.")
        type: TypeOptions = Field(description="The type to convert the value to.")

    class Output(BlockSchemaOutput):
        value: Any = Field(description="The converted value.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        # The same lossy rules as input pins (agentflow.coercion), so a converted value is what a pin would get.
        try:
            converted = convert(input_data.value, _TARGETS[input_data.type])
        except Exception as exc:
            yield "error", f"Failed to convert value: {exc}"
            return
        if isinstance(converted, float) and not math.isfinite(converted):  # "inf", "nan", "1e999": not JSON
            yield "error", f"Failed to convert value: {input_data.value!r} is not a finite number"
            return
        yield "value", converted

    test_cases = (
        BlockTestCase({"value": "1e3", "type": "number"}, [("value", 1000.0)], "number from text"),
        BlockTestCase({"value": 7, "type": "number"}, [("value", 7.0)], "an int becomes a float"),
        BlockTestCase({"value": [1, 2], "type": "number"}, [("value", 2.0)], "a list's number is its length"),
        BlockTestCase({"value": "x", "type": "number"}, [("value", 0.0)], "non-numeric text is 0"),
        BlockTestCase({"value": True, "type": "number"}, [("value", 1.0)], "true is 1"),
        BlockTestCase({"value": "True", "type": "boolean"}, [("value", True)], "'True' is true"),
        BlockTestCase({"value": "1", "type": "boolean"}, [("value", True)], "'1' is true"),
        BlockTestCase({"value": "yes", "type": "boolean"}, [("value", False)], "other text is false"),
        BlockTestCase({"value": 0, "type": "boolean"}, [("value", False)], "a falsy 0 is false"),
        BlockTestCase({"value": [0], "type": "boolean"}, [("value", True)], "a non-empty list is true"),
        BlockTestCase({"value": {"a": 1}, "type": "list"}, [("value", [["a", 1]])], "a dict becomes pairs"),
        BlockTestCase({"value": " x ", "type": "list"}, [("value", ["x"])], "text becomes [trimmed text]"),
        BlockTestCase({"value": "[1, 2]", "type": "list"}, [("value", [1, 2])], "'[...]' text is parsed"),
        BlockTestCase({"value": 0, "type": "list"}, [("value", [0])], "a falsy scalar is wrapped"),
        BlockTestCase({"value": "[1]", "type": "dictionary"}, [("value", {"value": [1]})], "JSON non-object"),
        BlockTestCase({"value": [5, 6], "type": "dictionary"}, [("value", {"0": 5, "1": 6})], "a list by index"),
        BlockTestCase({"value": '{"a": 1}', "type": "dictionary"}, [("value", {"a": 1})], "a JSON object"),
        BlockTestCase({"value": "oops", "type": "dictionary"}, [("value", {"value": "oops"})], "invalid JSON"),
        BlockTestCase({"value": {"a": 1}, "type": "string"}, [("value", '{"a": 1}')], "a dict as JSON text"),
        BlockTestCase({"value": "é", "type": "string"}, [("value", "é")], "text is unchanged"),
        BlockTestCase({"value": ["é"], "type": "string"}, [("value", '["\\u00e9"]')], "JSON text is ASCII-escaped"),
        BlockTestCase({"value": False, "type": "string"}, [("value", "false")], "false as JSON text"),
        BlockTestCase(
            {"value_@_a": 1, "type": "string"},
            [],
            "a value JSON cannot hold fails",
            error="Failed to convert value: cannot convert SimpleNamespace to str",
        ),
        BlockTestCase({"value": "inf", "type": "number"}, [], "infinity fails", error="'inf' is not a finite number"),
        BlockTestCase({"value": "1", "type": "integer"}, [], "an unknown type fails", error="input 'type'"),
        BlockTestCase({"type": "string"}, [], "value is required", error="missing required input 'value'"),
        BlockTestCase({"value": 1}, [], "type is required", error="missing required input 'type'"),
    )


class PrintToConsoleBlock(Block):
    """Disabled in AutoGPT; ported so that exports containing it load and run.

    It prints and logs nothing: a value may be secret, and the node's outputs already show it in the run.
    """

    id = "f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c"
    description = "Passes its input through on `output` and reports `printed`; the value is not written to logs."
    categories = frozenset({BlockCategory.BASIC})

    class Input(BlockSchema):
        text: Any = Field(description="The value to show.")

    class Output(BlockSchemaOutput):
        output: Any = Field(description="The value, unchanged.")
        status: str = Field(description="Always 'printed'.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "output", input_data.text
        yield "status", "printed"

    test_cases = (
        BlockTestCase(
            {"text": "Hello, World!"}, [("output", "Hello, World!"), ("status", "printed")], "AutoGPT: passes through"
        ),
        BlockTestCase({"text": {"a": [1]}}, [("output", {"a": [1]}), ("status", "printed")], "any value"),
        BlockTestCase({"text": 0}, [("output", 0), ("status", "printed")], "a falsy 0 is passed faithfully"),
        BlockTestCase({"text": ""}, [("output", ""), ("status", "printed")], "empty text is passed"),
        BlockTestCase({"text": None}, [], "null text is missing", error="missing required input 'text'"),
    )
