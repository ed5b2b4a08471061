"""Offline text tools (README, "Built-in blocks"): code extraction, word and character counts, escape sequences.

Differences from AutoGPT are listed in README, "Compatibility with AutoGPT".
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

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

__all__ = ["CodeExtractionBlock", "TextDecoderBlock", "TextEncoderBlock", "WordCharacterCountBlock", "decode_escapes"]

_TEXT = frozenset({BlockCategory.TEXT})

# Output pin -> the fence tags (```tag) that count as that language, in AutoGPT's pin order.
LANGUAGE_TAGS: dict[str, tuple[str, ...]] = {
    "html": ("html", "htm"),
    "css": ("css",),
    "javascript": ("javascript", "js"),
    "python": ("python", "py"),
    "sql": ("sql",),
    "java": ("java",),
    "cpp": ("cpp", "c++"),
    "csharp": ("csharp", "c#", "cs"),
    "json_code": ("json",),
    "bash": ("bash", "shell", "sh"),
    "php": ("php",),
    "ruby": ("ruby", "rb"),
    "yaml": ("yaml", "yml"),
    "markdown": ("markdown", "md"),
    "typescript": ("typescript", "ts"),
    "xml": ("xml",),
}
_PIN_OF_TAG = {tag: pin for pin, tags in LANGUAGE_TAGS.items() for tag in tags}
# A fence: ```tag, optional spaces or tabs, a newline, the code (lazy), a newline, ```. The tag must end the line,
# so ```java never matches ```javascript. One pattern both extracts and removes, so the two always agree.
_FENCE = re.compile(
    r"```(" + "|".join(re.escape(tag) for tag in sorted(_PIN_OF_TAG, key=len, reverse=True)) + r")[ \t]*\n(.*?)\n```",
    re.DOTALL | re.IGNORECASE,
)


class CodeExtractionBlock(Block):
    id = "d3a7d896-3b78-4f44-8b4b-48fbf4f0bcd8"
    description = "Extracts code blocks from text and identifies their programming languages"
    categories = _TEXT

    class Input(BlockSchema):
        text: str = Field(description="Text with fenced code blocks (```python ... ```), e.g. an AI answer.")

    class Output(BlockSchemaOutput):
        html: str = Field(description="The HTML code blocks (tags html, htm).")
        css: str = Field(description="The CSS code blocks.")
        javascript: str = Field(description="The JavaScript code blocks (javascript, js).")
        python: str = Field(description="The Python code blocks (python, py).")
        sql: str = Field(description="The SQL code blocks.")
        java: str = Field(description="The Java code blocks.")
        cpp: str = Field(description="The C++ code blocks (cpp, c++).")
        csharp: str = Field(description="The C# code blocks (csharp, c#, cs).")
        json_code: str = Field(description="The JSON code blocks.")
        bash: str = Field(description="The shell code blocks (bash, shell, sh).")
        php: str = Field(description="The PHP code blocks.")
        ruby: str = Field(description="The Ruby code blocks (ruby, rb).")
        yaml: str = Field(description="The YAML code blocks (yaml, yml).")
        markdown: str = Field(description="The Markdown code blocks (markdown, md).")
        typescript: str = Field(description="The TypeScript code blocks (typescript, ts).")
        xml: str = Field(description="The XML code blocks.")
        remaining_text: str = Field(description="The text without the extracted code blocks.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        found: dict[str, list[str]] = {pin: [] for pin in LANGUAGE_TAGS}
        for match in _FENCE.finditer(input_data.text):
            code = match.group(2).strip()
            if code:
                found[_PIN_OF_TAG[match.group(1).lower()]].append(code)
        for pin, blocks in found.items():  # pin order, each language's blocks in text order
            if blocks:
                yield pin, "\n\n".join(blocks)
        remaining = re.sub(r"\n\s*\n", "\n", _FENCE.sub("", input_data.text).strip())
        if remaining:
            yield "remaining_text", remaining

    test_cases = (
        BlockTestCase(
            {
                "text": "Here's a Python example:\n```python\nprint('Hello World')\n```\n"
                "And some HTML:\n```html\n<h1>Title</h1>\n```"
            },
            [
                ("html", "<h1>Title</h1>"),
                ("python", "print('Hello World')"),
                ("remaining_text", "Here's a Python example:\nAnd some HTML:"),
            ],
            "AutoGPT's case: pins in language order, then the remaining text",
        ),
        BlockTestCase(
            {"text": "```js\na()\n```\n```javascript\nb()\n```\n```JS\nc()\n```"},
            [("javascript", "a()\n\nb()\n\nc()")],
            "aliases and any case join in text order; nothing remains",
        ),
        BlockTestCase(
            {"text": '```json\n{"a": 1}\n```\n```c++\nint x;\n```\n```java\nclass A {}\n```'},
            [("java", "class A {}"), ("cpp", "int x;"), ("json_code", '{"a": 1}')],
            "json goes to json_code; c++ to cpp",
        ),
        BlockTestCase(
            {"text": "no code\n\n\nhere\n```rust\nfn main() {}\n```"},
            [("remaining_text", "no code\nhere\n```rust\nfn main() {}\n```")],
            "unknown languages stay in the text; blank lines collapse",
        ),
        BlockTestCase({"text": ""}, [], "empty text yields nothing"),
        BlockTestCase({}, [], "text is required", error="missing required input 'text'"),
    )


class WordCharacterCountBlock(Block):
    id = "ab2a782d-22cf-4587-8a70-55b59b3f9f90"
    description = "Counts the number of words and characters in a given text."
    categories = _TEXT

    class Input(BlockSchema):
        text: str = Field(description="The text to count.")

    class Output(BlockSchemaOutput):
        word_count: int = Field(description="Words: runs of non-whitespace characters.")
        character_count: int = Field(description="Characters (Unicode code points), whitespace included.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "word_count", len(input_data.text.split())
        yield "character_count", len(input_data.text)

    test_cases = (
        # AutoGPT's test expects 18 characters here; the text has 19.
        BlockTestCase(
            {"text": "Hello, how are you?"}, [("word_count", 4), ("character_count", 19)], "AutoGPT's case, corrected"
        ),
        BlockTestCase({"text": "  a\tb\n\nc  "}, [("word_count", 3), ("character_count", 10)], "any whitespace splits"),
        BlockTestCase({"text": ""}, [("word_count", 0), ("character_count", 0)], "empty text"),
        BlockTestCase({"text": "café ☃"}, [("word_count", 2), ("character_count", 6)], "code points, not bytes"),
        BlockTestCase({"text": 12345}, [("word_count", 1), ("character_count", 5)], "numbers are counted as text"),
    )


class TextEncoderBlock(Block):
    id = "5185f32e-4b65-4ecf-8fbb-873f003f09d6"
    description = "Encodes a string by converting special characters into escape sequences"
    categories = _TEXT

    class Input(BlockSchema):
        text: str = Field(description="Text whose special characters (newlines, tabs, non-ASCII, ...) to escape.")

    class Output(BlockSchemaOutput):
        encoded_text: str = Field(description="ASCII text with Python escape sequences (\\n, \\t, \\\\, \\xe9, ...).")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "encoded_text", codecs.encode(input_data.text, "unicode_escape").decode("ascii")

    test_cases = (
        BlockTestCase(
            {"text": 'Hello\nWorld!\nThis is a "quoted" string.'},
            [("encoded_text", 'Hello\\nWorld!\\nThis is a "quoted" string.')],
            "AutoGPT's case: newlines escaped, quotes kept",
        ),
        BlockTestCase({"text": "a\tb\\c\r"}, [("encoded_text", "a\\tb\\\\c\\r")], "tabs, backslashes, returns"),
        BlockTestCase({"text": "café ☃ 😀"}, [("encoded_text", "caf\\xe9 \\u2603 \\U0001f600")], "non-ASCII"),
        BlockTestCase({"text": ""}, [("encoded_text", "")], "empty text"),
    )


# A backslash and what may follow it; _unescape decides what it means (Python's unicode_escape rules).
_ESCAPE = re.compile(
    r"\\(x[0-9A-Fa-f]{0,2}|u[0-9A-Fa-f]{0,4}|U[0-9A-Fa-f]{0,8}|N(?:\{[^{}\\]*\})?|[0-7]{1,3}|.|\Z)", re.S
)
_SIMPLE = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_SIMPLE |= {"v": "\v", "\n": ""}  # a backslash before a newline joins the lines
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


def _unescape(match: re.Match[str]) -> str:
    body = match.group(1)
    if not body:
        raise _escape_error(match, "\\ at end of string")
    kind = body[0]
    if kind in _HEX_DIGITS:
        if len(body) != 1 + _HEX_DIGITS[kind]:
            raise _escape_error(match, f"truncated \\{kind}{'X' * _HEX_DIGITS[kind]} escape")
        code = int(body[1:], 16)
        if code > 0x10FFFF:
            raise _escape_error(match, "illegal Unicode character")
        return chr(code)
    if kind == "N":
        name = body[2:-1]  # empty when the braces are missing or empty
        if not name:
            raise _escape_error(match, "malformed \\N character escape")
        try:
            return unicodedata.lookup(name)
        except KeyError:
            raise _escape_error(match, "unknown Unicode character name") from None
    if kind in "01234567":
        return chr(int(body, 8))
    return _SIMPLE.get(kind, match.group(0))  # an unknown escape stays as written, as Python's codec keeps it


def _escape_error(match: re.Match[str], reason: str) -> BlockError:
    return BlockError(f"invalid escape sequence {match.group(0)!r} at position {match.start()}: {reason}")


def decode_escapes(text: str) -> str:
    """Turn Python escape sequences into the characters they stand for; every other character stays as it is.

    The codec's own escapes (`\\n`, `\\xe9`, `\\u2603`, `\\N{SNOWMAN}`, octal, ...) apply to a `str` directly, so
    non-ASCII text is never re-read as Latin-1. Raises BlockError for a malformed escape.
    """
    return _ESCAPE.sub(_unescape, text)


class TextDecoderBlock(Block):
    id = "2570e8fe-8447-43ed-84c7-70d657923231"
    description = "Decodes a string containing escape sequences into actual text"
    categories = _TEXT

    class Input(BlockSchema):
        text: str = Field(description='Text with escape sequences such as \\n, \\t, \\" or \\u2603.')

    class Output(BlockSchemaOutput):
        decoded_text: str = Field(description="The text with its escape sequences replaced.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "decoded_text", decode_escapes(input_data.text)

    test_cases = (
        BlockTestCase(
            {"text": 'Hello\nWorld!\nThis is a "quoted" string.'},
            [("decoded_text", 'Hello\nWorld!\nThis is a "quoted" string.')],
            "AutoGPT's case (its input has no escapes left)",
        ),
        BlockTestCase(
            {"text": 'Hello\\nWorld!\\tA \\"quoted\\" \\\\ string.'},
            [("decoded_text", 'Hello\nWorld!\tA "quoted" \\ string.')],
            "escapes are decoded",
        ),
        BlockTestCase(
            {"text": "caf\\xe9 \\u2603 \\U0001f600 \\N{BLACK STAR} \\101"},
            [("decoded_text", "café ☃ 😀 ★ A")],
            "hex, unicode, named and octal escapes",
        ),
        BlockTestCase({"text": "café ☃"}, [("decoded_text", "café ☃")], "non-ASCII text is kept, not mangled"),
        BlockTestCase({"text": "a\\qb"}, [("decoded_text", "a\\qb")], "unknown escapes stay as written"),
        BlockTestCase({"text": "bad \\x4"}, [], "truncated escape", error="truncated \\xXX escape"),
        BlockTestCase({"text": "end\\"}, [], "trailing backslash", error="\\ at end of string"),
    )
