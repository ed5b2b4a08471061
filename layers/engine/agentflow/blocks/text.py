"""Text blocks (README, "Built-in blocks")."""

from __future__ import annotations

import json
import re
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

__all__ = ["CombineTextsBlock", "FillTextTemplateBlock", "MatchTextPatternBlock", "TextSplitBlock"]

_TEXT = frozenset({BlockCategory.TEXT})


class MatchTextPatternBlock(PureBlock):
    id = "3060088f-6ed9-4928-9ba7-9c92823a7ccd"
    description = "Routes `data` to positive or negative depending on whether the text matches a regex."
    categories = _TEXT

    class Input(BlockSchema):
        text: Any = Field(description="Text to search; non-strings are searched as compact JSON.")
        match: str = Field(description="Regular expression (Python syntax).")
        data: Any = Field(description="Value to forward; falsy data forwards the text instead.")
        case_sensitive: bool = Field(default=True, description="Match case.")
        dot_all: bool = Field(default=True, description="Let '.' match newlines.")

    class Output(BlockSchemaOutput):
        positive: Any = Field(description="The payload, when the pattern is found.")
        negative: Any = Field(description="The payload, when it is not.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        payload = input_data.data or input_data.text
        text = input_data.text
        if not isinstance(text, str):
            text = json.dumps(text, separators=(",", ":"), ensure_ascii=False)  # compact, like orjson
        flags = (0 if input_data.case_sensitive else re.IGNORECASE) | (re.DOTALL if input_data.dot_all else 0)
        try:
            found = re.search(input_data.match, text, flags) is not None
        except re.error as exc:
            raise BlockError(f"invalid regular expression {input_data.match!r}: {exc}") from exc
        yield ("positive" if found else "negative"), payload

    test_cases = (
        BlockTestCase(
            {"text": "Hello World", "match": "world", "data": "D", "case_sensitive": False},
            [("positive", "D")],
            "case-insensitive match forwards data",
        ),
        BlockTestCase(
            {"text": "Hello World", "match": "world", "data": "D"}, [("negative", "D")], "case-sensitive by default"
        ),
        BlockTestCase({"text": "abc", "match": "b", "data": ""}, [("positive", "abc")], "falsy data forwards text"),
        BlockTestCase({"text": "abc", "match": "z", "data": 0}, [("negative", "abc")], "0 is falsy too"),
        BlockTestCase(
            {"text": {"a": 1}, "match": '^\\{"a":1\\}$', "data": "D"},
            [("positive", "D")],
            "non-strings are searched as compact JSON",
        ),
        BlockTestCase({"text": "a\nb", "match": "a.b", "data": 1}, [("positive", 1)], "dot_all by default"),
        BlockTestCase({"text": "a\nb", "match": "a.b", "data": 1, "dot_all": False}, [("negative", 1)], "dot_all off"),
        BlockTestCase({"text": "abc", "match": "(", "data": 1}, [], "bad regex fails", error="invalid regular"),
        BlockTestCase({"text": "abc", "match": "a"}, [], "data is required", error="missing required input 'data'"),
    )


class FillTextTemplateBlock(PureBlock):
    id = "db7d8f02-2f44-4c55-ab7a-eae0941f0c30"
    description = "Renders a Jinja2 template (sandboxed) with the given values."
    categories = _TEXT

    class Input(BlockSchema):
        values: dict[str, Any] = Field(description="Template variables, usually wired as values_#_<name>.")
        format: str = Field(description="Jinja2 template, e.g. 'Hello {{ name }}'.")
        escape_html: bool = Field(default=False, description="Escape HTML in the values.")

    class Output(BlockSchemaOutput):
        output: str = Field(description="The rendered text.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        from agentflow.blocks.text_format import TemplateRenderError, render_template  # lazy: see AgentOutputBlock

        try:
            text = render_template(input_data.format, input_data.values, escape_html=input_data.escape_html)
        except TemplateRenderError as exc:
            raise BlockError(str(exc)) from exc
        yield "output", text

    test_cases = (
        BlockTestCase(
            {"values": {"name": "Bob"}, "format": "Hello {{ name }}!"}, [("output", "Hello Bob!")], "renders"
        ),
        BlockTestCase(
            {"values": {}, "values_#_name": "Ann", "values_#_n": 2, "format": "{{ name }} x{{ n }}"},
            [("output", "Ann x2")],
            "values from dynamic pins",
        ),
        BlockTestCase(
            {"values": {"xs": [1, 2, 3]}, "format": "{% for x in xs %}{{ x }},{% endfor %}"},
            [("output", "1,2,3,")],
            "loops",
        ),
        BlockTestCase(
            {"values": {"v": "<i>"}, "format": "{{ v }}", "escape_html": True}, [("output", "&lt;i&gt;")], "escape"
        ),
        BlockTestCase({"values": {}, "format": "[{{ nope }}]"}, [("output", "[]")], "undefined renders empty"),
        BlockTestCase({"values": {"p": 3.14159}, "format": '{{ p|format("%.2f") }}'}, [("output", "3.14")], "format"),
        BlockTestCase({"values": {}, "format": "line\n"}, [("output", "line")], "one trailing newline dropped"),
        BlockTestCase(
            {"values": '{"a": 1}', "format": "{{ a }}"}, [("output", "1")], "JSON text is parsed into values"
        ),
        BlockTestCase({"values": {}, "format": "{{ 2 ** 2000 }}"}, [], "power guard", error="'**' operands"),
        BlockTestCase({"values": {}, "format": "{% for %}"}, [], "syntax error", error="invalid template"),
        BlockTestCase({"values": {}, "format": "{{ x|tojson }}"}, [], "tojson removed", error="No filter named"),
        BlockTestCase({"format": "x"}, [], "values required", error="missing required input 'values'"),
    )


class CombineTextsBlock(PureBlock):
    id = "e30a4d42-7b7d-4e6a-b36e-1f9b8e3b7d85"
    description = "Joins texts with a delimiter."
    categories = _TEXT

    class Input(BlockSchema):
        input: list[str] = Field(description="Texts to join; non-strings are converted (dicts become JSON).")
        delimiter: str = Field(default="", description="Put between the texts.")

    class Output(BlockSchemaOutput):
        output: str = Field(description="The joined text.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "output", input_data.delimiter.join(input_data.input)

    test_cases = (
        BlockTestCase({"input": ["a", "b", "c"]}, [("output", "abc")], "no delimiter by default"),
        BlockTestCase({"input": ["a", "b"], "delimiter": ", "}, [("output", "a, b")], "with delimiter"),
        BlockTestCase(
            {"input": [5, {"k": 1}, True], "delimiter": "|"},
            [("output", '5|{"k": 1}|true')],
            "non-strings coerced via JSON",
        ),
        BlockTestCase({"input": []}, [("output", "")], "empty list"),
        BlockTestCase({"input": "solo"}, [("output", "solo")], "a lone string becomes a one-item list"),
        BlockTestCase(
            {"input_$_0": "x", "input_$_2": "z", "delimiter": "-"},
            [("output", "x-null-z")],
            "quirk: a gap in list pins is None, which coerces to the text 'null'",
        ),
    )


class TextSplitBlock(PureBlock):
    id = "d5ea33c8-a575-477a-b42f-2fe3be5055ec"
    description = "Splits a text on a delimiter."
    categories = _TEXT

    class Input(BlockSchema):
        text: str = Field(description="The text to split.")
        delimiter: str = Field(description="Where to split (must not be empty).")
        strip: bool = Field(default=True, description="Strip whitespace around each part.")

    class Output(BlockSchemaOutput):
        texts: list[str] = Field(description="The parts.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        if not input_data.text:
            yield "texts", []
            return
        parts = input_data.text.split(input_data.delimiter)
        yield "texts", [part.strip() for part in parts] if input_data.strip else parts

    test_cases = (
        BlockTestCase({"text": "a, b ,c", "delimiter": ","}, [("texts", ["a", "b", "c"])], "splits and strips"),
        BlockTestCase({"text": "a, b", "delimiter": ",", "strip": False}, [("texts", ["a", " b"])], "strip off"),
        BlockTestCase({"text": "", "delimiter": ","}, [("texts", [])], "empty text gives []"),
        BlockTestCase({"text": "", "delimiter": ""}, [("texts", [])], "empty text wins over empty delimiter"),
        BlockTestCase({"text": "a,,b", "delimiter": ","}, [("texts", ["a", "", "b"])], "empty parts kept"),
        BlockTestCase({"text": "abc", "delimiter": ""}, [], "empty delimiter fails", error="empty separator"),
    )
