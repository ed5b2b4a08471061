"""Basic blocks (README, "Built-in blocks")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
    BlockType,
)

__all__ = ["NoteBlock", "StoreValueBlock"]


class StoreValueBlock(Block):
    id = "1ff065e9-88e8-4358-9d82-8dc91f622ba9"
    description = "Forwards `data` (or `input` when data is missing or falsy) each time `input` arrives."
    categories = frozenset({BlockCategory.BASIC})
    static_output = True

    class Input(BlockSchema):
        input: Any = Field(description="Trigger; also the value forwarded when `data` is missing or falsy.")
        data: Any = Field(default=None, description="The value to store and forward.")

    class Output(BlockSchemaOutput):
        output: Any = Field(description="The stored value.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        # Truthiness, as in AutoGPT: 0, "", [], {} and False in `data` forward `input` instead.
        yield "output", input_data.data or input_data.input

    test_cases = (
        BlockTestCase({"input": 1, "data": "x"}, [("output", "x")], "data wins"),
        BlockTestCase({"input": 1}, [("output", 1)], "missing data forwards input"),
        BlockTestCase({"input": 1, "data": None}, [("output", 1)], "null data forwards input"),
        BlockTestCase({"input": "in", "data": 0}, [("output", "in")], "falsy 0 forwards input"),
        BlockTestCase({"input": "in", "data": ""}, [("output", "in")], "falsy '' forwards input"),
        BlockTestCase({"input": "in", "data": []}, [("output", "in")], "falsy [] forwards input"),
        BlockTestCase({"input": "in", "data": False}, [("output", "in")], "falsy False forwards input"),
        BlockTestCase({"input": {"a": 1}, "data": {}}, [("output", {"a": 1})], "falsy {} forwards input"),
        BlockTestCase({"data": 5}, [], "input is required", error="missing required input 'input'"),
        BlockTestCase({"input": None, "data": 5}, [], "null input is missing", error="'input'"),
    )


class NoteBlock(Block):
    id = "cc10ff7b-7753-4ff2-9af6-9399b1a7eddc"
    description = "A note on the canvas. It has no links and never runs in a graph."
    categories = frozenset({BlockCategory.BASIC})
    block_type = BlockType.NOTE

    class Input(BlockSchema):
        text: str = Field(description="The note's text.")

    class Output(BlockSchemaOutput):
        output: str = Field(description="The note's text.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "output", input_data.text

    test_cases = (
        BlockTestCase({"text": "remember"}, [("output", "remember")], "echoes its text"),
        BlockTestCase({"text": 12}, [("output", "12")], "coerced to text"),
        BlockTestCase({}, [], "text is required", error="missing required input 'text'"),
    )
