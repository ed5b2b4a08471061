"""List blocks: build (optionally in chunks), extend and index lists (README, "Built-in blocks").

Several pins are named `list`, as in AutoGPT, so annotations use the module-level alias `AnyList`: inside a class
body the name `list` would be the field.
"""

from __future__ import annotations

import builtins
import json
import re
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

__all__ = ["AddToListBlock", "CreateListBlock", "GetListItemBlock", "estimate_tokens"]

AnyList = list[Any]

# What a BPE tokenizer splits text into, roughly: groups of up to 3 digits, runs of letters, runs of punctuation.
_PIECES = re.compile(r"\d{1,3}|[^\W\d]+|[^\w\s]+")


def estimate_tokens(value: Any) -> int:
    """A tokenizer-free estimate of `value`'s tokens (text as is, anything else as JSON), for chunking.

    AutoGPT counts with tiktoken's o200k_base, which the engine does not ship. Here a group of up to 3 digits is
    one token, a run of letters one per 6 ASCII letters (a common word is one token) or per 2 other letters, and
    a run of punctuation one per 3 marks: close for English and JSON, so chunk boundaries may differ from
    AutoGPT's only near the limit.
    """
    text = value if isinstance(value, str) else json.dumps(value, default=_jsonable)
    return sum(_piece_tokens(piece) for piece in _PIECES.findall(text))


def _piece_tokens(piece: str) -> int:
    if piece[0].isdigit():
        return 1
    if not (piece[0].isalpha() or piece[0] == "_"):
        return -(-len(piece) // 3)  # punctuation
    return -(-len(piece) // (6 if piece.isascii() else 2))


def _jsonable(value: Any) -> Any:
    return vars(value) if isinstance(value, types.SimpleNamespace) else repr(value)


def _limit(value: int | None, pin: str) -> int:
    """0 and None mean no limit, as in AutoGPT; a negative limit is refused (AutoGPT yields empty chunks)."""
    if value is not None and value < 0:
        raise BlockError(f"{pin} must be 0 (no limit) or more, not {value}")
    return value or 0


class CreateListBlock(PureBlock):
    id = "a912d5c7-6e00-4542-b2a9-8034136930e4"
    description = "Creates a list from values, whole or in chunks of at most `max_size` items or `max_tokens` tokens."
    categories = frozenset({BlockCategory.DATA})

    class Input(BlockSchema):
        values: AnyList = Field(description="The values of the list, usually given one `values_$_<i>` pin each.")
        max_size: int | None = Field(default=None, description="Yield chunks of at most this many items (0: no).")
        max_tokens: int | None = Field(default=None, description="Yield chunks of at most this many tokens (0: no).")

    class Output(BlockSchemaOutput):
        list: AnyList = Field(description="The list, or each chunk of it in order.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        max_size = _limit(input_data.max_size, "max_size")
        max_tokens = _limit(input_data.max_tokens, "max_tokens")
        chunk: AnyList = []
        chunk_tokens = 0
        for value in input_data.values:
            tokens = estimate_tokens(value) if max_tokens else 0
            too_big = (max_tokens and chunk_tokens + tokens > max_tokens) or (max_size and len(chunk) + 1 > max_size)
            # Deviation: AutoGPT also yields an empty first chunk when the first value alone is over max_tokens.
            if too_big and chunk:
                yield "list", chunk
                chunk, chunk_tokens = [], 0
            chunk.append(value)
            chunk_tokens += tokens
        if chunk or not input_data.values:
            yield "list", chunk

    test_cases = (
        BlockTestCase({"values": ["Alice", 25, True]}, [("list", ["Alice", 25, True])], "AutoGPT: mixed values"),
        BlockTestCase(
            {"values": [1, 2, 3, "four", {"key": "value"}]},
            [("list", [1, 2, 3, "four", {"key": "value"}])],
            "AutoGPT: numbers, text and a dictionary",
        ),
        BlockTestCase({"values": []}, [("list", [])], "an empty list is yielded once"),
        BlockTestCase({"values": [], "max_size": 2}, [("list", [])], "an empty list with a limit is yielded once"),
        BlockTestCase(
            {"values": [1, 2, 3, 4, 5], "max_size": 2},
            [("list", [1, 2]), ("list", [3, 4]), ("list", [5])],
            "chunks of max_size items",
        ),
        BlockTestCase({"values": [1, 2], "max_size": 0}, [("list", [1, 2])], "max_size 0 is no limit"),
        BlockTestCase(
            {"values": ["one two", "three", "four five six"], "max_tokens": 3},
            [("list", ["one two", "three"]), ("list", ["four five six"])],
            "chunks of max_tokens tokens",
        ),
        BlockTestCase(
            {"values": ["one two three", "four"], "max_tokens": 2},
            [("list", ["one two three"]), ("list", ["four"])],
            "deviation: a value over max_tokens gets its own chunk, with no empty chunk first",
        ),
        BlockTestCase(
            {"values": ["a", "b", "c"], "max_size": 2, "max_tokens": 100},
            [("list", ["a", "b"]), ("list", ["c"])],
            "the first limit reached starts a chunk",
        ),
        BlockTestCase(
            {"values_$_0": "x", "values_$_2": 0}, [("list", ["x", None, 0])], "dynamic pins, padded with null"
        ),
        BlockTestCase({"values": [0, False, "", [], {}]}, [("list", [0, False, "", [], {}])], "falsy values are kept"),
        BlockTestCase({"values": "[1, 2]"}, [("list", [1, 2])], "'[...]' text is parsed"),
        BlockTestCase({"values": "solo"}, [("list", ["solo"])], "plain text becomes [text]"),
        BlockTestCase({"values": [1], "max_size": -1}, [], "a negative max_size fails", error="max_size must be 0"),
        BlockTestCase({"values": [1], "max_tokens": -5}, [], "a negative max_tokens fails", error="max_tokens must"),
        BlockTestCase({}, [], "values is required", error="missing required input 'values'"),
    )


class AddToListBlock(PureBlock):
    id = "aeb08fc1-2fc1-4141-bc8e-f758f183a822"
    description = "Adds `entries`, then `entry`, to a copy of a list (a new one if none): at `position`, or at the end."
    categories = frozenset({BlockCategory.BASIC})

    class Input(BlockSchema):
        list: AnyList = Field(default_factory=builtins.list, description="The list to add to.")
        entry: Any = Field(default=None, description="One entry to add, after `entries` (ignored when missing).")
        entries: AnyList = Field(default_factory=builtins.list, description="Entries to add.")
        position: int | None = Field(
            default=None, description="Where to insert (Python slice semantics: negative counts from the end)."
        )

    class Output(BlockSchemaOutput):
        updated_list: AnyList = Field(description="The list with the entries added.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        added = builtins.list(input_data.entries)
        # `entry` is None only when missing (null means "not given"); 0, False and "" are real entries.
        if input_data.entry is not None:
            added.append(input_data.entry)
        items, position = input_data.list, input_data.position
        if position is None:
            yield "updated_list", [*items, *added]
        else:
            yield "updated_list", [*items[:position], *added, *items[position:]]

    test_cases = (
        BlockTestCase(
            {
                "list": [1, "string", {"existing_key": "existing_value"}],
                "entry": {"new_key": "new_value"},
                "position": 1,
            },
            [("updated_list", [1, {"new_key": "new_value"}, "string", {"existing_key": "existing_value"}])],
            "AutoGPT: insert at a position",
        ),
        BlockTestCase({"entry": "first_entry"}, [("updated_list", ["first_entry"])], "AutoGPT: a new list"),
        BlockTestCase({"list": ["a", "b", "c"], "entry": "d"}, [("updated_list", ["a", "b", "c", "d"])], "AutoGPT"),
        BlockTestCase(
            {"entry": "e", "entries": ["f", "g"], "list": ["a", "b"], "position": 1},
            [("updated_list", ["a", "f", "g", "e", "b"])],
            "AutoGPT: entries then entry, inserted",
        ),
        BlockTestCase(
            {"list": [1, 2, 3], "entry": "x", "position": -1},
            [("updated_list", [1, 2, "x", 3])],
            "a negative position counts from the end",
        ),
        BlockTestCase(
            {"list": [1, 2], "entry": "x", "position": 99}, [("updated_list", [1, 2, "x"])], "past the end appends"
        ),
        BlockTestCase(
            {"list": [1, 2], "entry": "x", "position": -99}, [("updated_list", ["x", 1, 2])], "before the start"
        ),
        BlockTestCase(
            {"list": [1, 2], "entry": "x", "position": 0}, [("updated_list", ["x", 1, 2])], "position 0 is the start"
        ),
        BlockTestCase({"list": [1], "entry": 0}, [("updated_list", [1, 0])], "a falsy 0 entry is added"),
        BlockTestCase({"list": [1], "entry": False}, [("updated_list", [1, False])], "a falsy False entry is added"),
        BlockTestCase({"list": [1], "entry": []}, [("updated_list", [1, []])], "an empty-list entry is added"),
        BlockTestCase({"list": [1], "entry": None}, [("updated_list", [1])], "a null entry is missing"),
        BlockTestCase({"entries": [None]}, [("updated_list", [None])], "entries may hold null"),
        BlockTestCase(
            {"list": [1], "entries_$_0": "a", "entries_$_1": "b"},
            [("updated_list", [1, "a", "b"])],
            "entries from dynamic pins",
        ),
        BlockTestCase({"list": "[1, 2]", "entry": 3}, [("updated_list", [1, 2, 3])], "'[...]' text is parsed"),
        BlockTestCase({"list": {"k": 1}, "entry": 3}, [("updated_list", [["k", 1], 3])], "a dict becomes pairs"),
        BlockTestCase({}, [("updated_list", [])], "nothing given yields an empty list"),
        BlockTestCase(
            {"entries_$_x": 1}, [], "a bad dynamic pin fails, naming it", error="input 'entries_$_x': index must be"
        ),
    )


class GetListItemBlock(PureBlock):
    id = "262ca24c-1025-43cf-a578-534e23234e97"
    description = "Returns the item at an index of a list; negative indexes count from the end."
    categories = frozenset({BlockCategory.BASIC})

    class Input(BlockSchema):
        list: AnyList = Field(description="The list to get the item from.")
        index: int = Field(description="The 0-based index of the item (negative counts from the end).")

    class Output(BlockSchemaOutput):
        item: Any = Field(description="The item at the index.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        items, index = input_data.list, input_data.index
        try:
            item = items[index]
        except IndexError:
            count = f"{len(items)} item{'' if len(items) == 1 else 's'}"
            yield "error", f"Index out of range: {index} (the list has {count})"
            return
        yield "item", item

    test_cases = (
        BlockTestCase({"list": [1, 2, 3], "index": 1}, [("item", 2)], "AutoGPT: an index"),
        BlockTestCase({"list": [1, 2, 3], "index": -1}, [("item", 3)], "AutoGPT: a negative index"),
        BlockTestCase({"list": [1, 2, 3], "index": -3}, [("item", 1)], "the first item from the end"),
        BlockTestCase({"list": [1, 2, 3], "index": 3}, [], "past the end fails", error="Index out of range: 3"),
        BlockTestCase({"list": [1, 2, 3], "index": -4}, [], "before the start fails", error="Index out of range: -4"),
        BlockTestCase({"list": [], "index": 0}, [], "an empty list fails", error="(the list has 0 items)"),
        BlockTestCase({"list": [0, 1], "index": 0}, [("item", 0)], "a falsy item is yielded"),
        BlockTestCase({"list": [None, 1], "index": 0}, [("item", None)], "a null item is yielded"),
        BlockTestCase({"list": ["a", "b"], "index": "1"}, [("item", "b")], "a numeric text index is converted"),
        BlockTestCase({"list": ["a", "b"], "index": 1.9}, [("item", "b")], "a float index is truncated"),
        BlockTestCase({"list": "[7, 8]", "index": 1}, [("item", 8)], "'[...]' text is parsed"),
        BlockTestCase({"list_$_0": "x", "list_$_1": "y", "index": 1}, [("item", "y")], "a list from dynamic pins"),
        BlockTestCase({"index": 0}, [], "list is required", error="missing required input 'list'"),
        BlockTestCase({"list": [1]}, [], "index is required", error="missing required input 'index'"),
    )
