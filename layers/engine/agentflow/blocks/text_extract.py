"""Regex extraction and plain-text replacement (README, "Built-in blocks").

ExtractTextInformationBlock runs user patterns on user text, so it bounds what one run may cost: the text, the
number of matches and each match are truncated, and matching runs under a time limit. The standard `re` engine
cannot be interrupted (it holds the GIL while it backtracks), so matching uses the `regex` module, whose default
VERSION0 syntax is `re`'s and whose matching stops at a timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import regex
from pydantic import Field

from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockError,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
)

__all__ = [
    "MAX_MATCHES",
    "MAX_MATCH_LENGTH",
    "MAX_REPLACED_LENGTH",
    "MAX_TEXT_LENGTH",
    "REGEX_TIMEOUT_SECONDS",
    "ExtractTextInformationBlock",
    "TextReplaceBlock",
]

_TEXT = frozenset({BlockCategory.TEXT})

MAX_TEXT_LENGTH = 1_000_000  # characters searched; the rest of the text is ignored
MAX_MATCHES = 1000  # matches collected
MAX_MATCH_LENGTH = 10_000  # characters kept of each match
REGEX_TIMEOUT_SECONDS = 5.0  # for the whole search; past it the block answers "no match"
MAX_REPLACED_LENGTH = 10_000_000  # characters TextReplaceBlock may produce


def _as_text(value: Any) -> str:
    """Non-strings are searched as compact JSON, as MatchTextPatternBlock does."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def find_matches(pattern: str, text: str, group: int, flags: int, first_only: bool) -> list[str]:
    """The `group` of each match, within the limits above. Raises regex.error, TimeoutError, IndexError, ...

    A match is skipped when the pattern has fewer than `group` groups (as in AutoGPT: then nothing matches) or
    when that group took no part in it (AutoGPT fails there, and answers "no match" for every match).
    """
    found: list[str] = []
    matches = regex.finditer(
        pattern,
        text[:MAX_TEXT_LENGTH],
        flags=flags | regex.VERSION0,
        timeout=REGEX_TIMEOUT_SECONDS,
        concurrent=True,  # release the GIL: the executor's time limit keeps working meanwhile
    )
    for match in matches:
        if len(found) >= MAX_MATCHES:
            break
        value = match.group(group) if group <= len(match.groups()) else None
        if value is not None:  # None: an optional group that took no part in this match
            found.append(value[:MAX_MATCH_LENGTH])
            if first_only:
                break  # same result as collecting all and keeping the first, without the cost
    return found


class ExtractTextInformationBlock(Block):
    id = "3146e4fe-2cdd-4f29-bd12-0c9d5bb4deb0"
    description = "Extracts text matching a regex (one match, or all of them) from the given text."
    categories = _TEXT

    class Input(BlockSchema):
        text: Any = Field(description="Text to parse; non-strings are searched as compact JSON.")
        pattern: str = Field(description="Regular expression (Python syntax).")
        group: int = Field(default=0, description="Group number to extract (0: the whole match).")
        case_sensitive: bool = Field(default=True, description="Match case.")
        dot_all: bool = Field(default=True, description="Let '.' match newlines.")
        find_all: bool = Field(default=False, description="Yield every match, not only the first.")

    class Output(BlockSchemaOutput):
        positive: str = Field(description="An extracted text, once per match kept.")
        negative: str = Field(description="The original text, when nothing matched.")
        matched_results: list[str] = Field(description="Every extracted text.")
        matched_count: int = Field(description="How many texts were extracted.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        text = _as_text(input_data.text)
        flags = (0 if input_data.case_sensitive else regex.IGNORECASE) | (regex.DOTALL if input_data.dot_all else 0)
        try:
            matches = find_matches(input_data.pattern, text, input_data.group, flags, not input_data.find_all)
        except Exception:  # a bad pattern or group, or the time limit: AutoGPT answers "no match", not a failure
            matches = []
        for match in matches:
            yield "positive", match
        if not matches:
            yield "negative", text  # the JSON text for a non-string: the pin is a str
        yield "matched_results", matches
        yield "matched_count", len(matches)

    test_cases = (
        # AutoGPT's own cases
        BlockTestCase(
            {"text": "Hello, World!", "pattern": "Hello, (.+)", "group": 1},
            [("positive", "World!"), ("matched_results", ["World!"]), ("matched_count", 1)],
            "group 1",
        ),
        BlockTestCase(
            {"text": "Hello, World!", "pattern": "Hello, (.+)", "group": 0},
            [("positive", "Hello, World!"), ("matched_results", ["Hello, World!"]), ("matched_count", 1)],
            "group 0 is the whole match",
        ),
        BlockTestCase(
            {"text": "Hello, World!", "pattern": "Hello, (.+)", "group": 2},
            [("negative", "Hello, World!"), ("matched_results", []), ("matched_count", 0)],
            "a group the pattern lacks matches nothing",
        ),
        BlockTestCase(
            {"text": "Hello, World!", "pattern": "hello,", "case_sensitive": False},
            [("positive", "Hello,"), ("matched_results", ["Hello,"]), ("matched_count", 1)],
            "case-insensitive",
        ),
        BlockTestCase(
            {"text": "Hello, World!! Hello, Earth!!", "pattern": "Hello, (\\S+)", "group": 1, "find_all": False},
            [("positive", "World!!"), ("matched_results", ["World!!"]), ("matched_count", 1)],
            "first match only",
        ),
        BlockTestCase(
            {"text": "Hello, World!! Hello, Earth!!", "pattern": "Hello, (\\S+)", "group": 1, "find_all": True},
            [
                ("positive", "World!!"),
                ("positive", "Earth!!"),
                ("matched_results", ["World!!", "Earth!!"]),
                ("matched_count", 2),
            ],
            "find_all yields each match, then the list",
        ),
        # agentflow's
        BlockTestCase(
            {"text": "abc", "pattern": "("},
            [("negative", "abc"), ("matched_results", []), ("matched_count", 0)],
            "an invalid pattern takes the no-match path instead of failing",
        ),
        BlockTestCase(
            {"text": {"k": [1, 2]}, "pattern": '"k":\\[(\\d)', "group": 1},
            [("positive", "1"), ("matched_results", ["1"]), ("matched_count", 1)],
            "non-strings are searched as compact JSON",
        ),
        BlockTestCase(
            {"text": {"k": 1}, "pattern": "zzz"},
            [("negative", '{"k":1}'), ("matched_results", []), ("matched_count", 0)],
            "negative carries the JSON text of a non-string",
        ),
        BlockTestCase({"pattern": "a"}, [], "text is required", error="missing required input 'text'"),
    )


class TextReplaceBlock(Block):
    id = "7e7c87ab-3469-4bcc-9abe-67705091b713"
    description = "Replaces every occurrence of a text with another (literally, not as a regex)."
    categories = _TEXT

    class Input(BlockSchema):
        text: str = Field(description="The text to change.")
        old: str = Field(description="The text to replace (empty: insert `new` between every character).")
        new: str = Field(description="The text to put instead.")

    class Output(BlockSchemaOutput):
        output: str = Field(description="The text with every occurrence replaced.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        text, old, new = input_data.text, input_data.old, input_data.new
        # Refuse before building it: an empty `old` with a long `new` grows the text quadratically.
        count = len(text) + 1 if not old else text.count(old)
        size = len(text) + count * (len(new) - len(old))
        if size > MAX_REPLACED_LENGTH:
            raise BlockError(f"the replaced text would be {size} characters; the limit is {MAX_REPLACED_LENGTH}")
        yield "output", text.replace(old, new)

    test_cases = (
        BlockTestCase({"text": "Hello, World!", "old": "Hello", "new": "Hi"}, [("output", "Hi, World!")], "replaces"),
        BlockTestCase({"text": "a.b.c", "old": ".", "new": "$1\\"}, [("output", "a$1\\b$1\\c")], "literal, not regex"),
        BlockTestCase({"text": "abc", "old": "", "new": "-"}, [("output", "-a-b-c-")], "empty old inserts everywhere"),
        BlockTestCase({"text": "aaa", "old": "aa", "new": "b"}, [("output", "ba")], "non-overlapping, left to right"),
        BlockTestCase({"text": "x", "old": "y", "new": "z"}, [("output", "x")], "no occurrence"),
        BlockTestCase({"text": "x", "old": "x"}, [], "new is required", error="missing required input 'new'"),
    )
