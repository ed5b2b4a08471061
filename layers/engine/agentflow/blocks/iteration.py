"""Iteration (README, "Built-in blocks")."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sized
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

__all__ = ["StepThroughItemsBlock"]

MAX_ITEMS = 10_000
MAX_ITEMS_STR_CHARS = 1024 * 1024  # 1 MB of JSON text


class StepThroughItemsBlock(PureBlock):
    id = "f66a3543-28d3-4ab5-8945-9b336371e2ce"
    description = "Yields each item (and its key or index) of a list, an object or JSON text, one at a time."
    categories = frozenset({BlockCategory.LOGIC})

    class Input(BlockSchema):
        items: list[Any] = Field(default_factory=list, description="A list to step through.")
        items_object: dict[Any, Any] = Field(default_factory=dict, description="An object to step through.")
        items_str: str = Field(default="", description="JSON text of a list or object to step through.")

    class Output(BlockSchemaOutput):
        item: Any = Field(description="The current item.")
        key: Any = Field(description="Its key (objects) or index (lists).")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        # Every non-empty source is stepped through, in this order.
        for source in (input_data.items, input_data.items_object, input_data.items_str):
            if not source:
                continue
            collection = _parse_json(source) if isinstance(source, str) else source
            if isinstance(collection, Sized) and len(collection) > MAX_ITEMS:
                raise BlockError(f"too many items: {len(collection)} (the limit is {MAX_ITEMS})")
            if isinstance(collection, dict):
                for key, value in collection.items():
                    yield "item", value
                    yield "key", key
            elif isinstance(collection, Iterable):
                for index, value in enumerate(collection):
                    yield "item", value
                    yield "key", index
            else:
                raise BlockError(f"items_str must hold a JSON list, object or string, not {_json_kind(collection)}")

    test_cases = (
        BlockTestCase(
            {"items": ["a", "b"]},
            [("item", "a"), ("key", 0), ("item", "b"), ("key", 1)],
            "list: alternating item, key",
        ),
        BlockTestCase(
            {"items_object": {"x": 1, "y": 2}},
            [("item", 1), ("key", "x"), ("item", 2), ("key", "y")],
            "object: value then key, in insertion order",
        ),
        BlockTestCase({"items_str": '{"k": [1]}'}, [("item", [1]), ("key", "k")], "JSON text is parsed"),
        BlockTestCase(
            {"items": [1], "items_object": {"k": 2}, "items_str": "[3]"},
            [("item", 1), ("key", 0), ("item", 2), ("key", "k"), ("item", 3), ("key", 0)],
            "every non-empty source, in order",
        ),
        BlockTestCase({}, [], "nothing to step through yields nothing"),
        BlockTestCase({"items": [], "items_str": ""}, [], "empty sources are skipped"),
        BlockTestCase(
            {"items": {"a": 1, "b": 2}},
            [("item", ["a", 1]), ("key", 0), ("item", ["b", 2]), ("key", 1)],
            "caveat: a dict wired into items becomes [key, value] pairs",
        ),
        BlockTestCase({"items": "solo"}, [("item", "solo"), ("key", 0)], "caveat: plain text becomes [text]"),
        BlockTestCase(
            {"items": "[1, 2]"}, [("item", 1), ("key", 0), ("item", 2), ("key", 1)], "caveat: '[...]' text is parsed"
        ),
        BlockTestCase(
            {"items_object": ["p", "q"]},
            [("item", "p"), ("key", 0), ("item", "q"), ("key", 1)],
            "caveat: a list wired into items_object becomes {index: item}",
        ),
        BlockTestCase(
            {"items_str": ["p"]}, [("item", "p"), ("key", 0)], "a list wired into items_str round-trips via JSON"
        ),
        BlockTestCase(
            {"items_str": '"ab"'}, [("item", "a"), ("key", 0), ("item", "b"), ("key", 1)], "a JSON string iterates"
        ),
        BlockTestCase({"items_str": "5"}, [], "a JSON scalar fails", error="not a number"),
        BlockTestCase({"items_str": "[1,"}, [], "invalid JSON fails", error="items_str is not valid JSON"),
        BlockTestCase(
            {"items": [1], "items_str": "{"},
            [("item", 1), ("key", 0)],
            "earlier items stay yielded when a later source fails",
            error="items_str is not valid JSON",
        ),
        BlockTestCase({"items": list(range(10_001))}, [], "too many items", error="too many items: 10001"),
    )


def _parse_json(text: str) -> Any:
    if len(text) > MAX_ITEMS_STR_CHARS:
        raise BlockError(f"items_str is too large: {len(text)} characters (the limit is {MAX_ITEMS_STR_CHARS})")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BlockError(f"items_str is not valid JSON: {exc}") from exc


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, (int, float)) else type(value).__name__
