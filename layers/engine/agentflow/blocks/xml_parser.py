"""XMLParserBlock (README, "Built-in blocks"): XML text to the nested dict AutoGPT's gravitasml builds.

The shape: `<a><b>x</b></a>` gives `{"a": {"b": "x"}}`, an empty element gives `""`, and siblings that repeat a tag
become a list of one-key dicts: `<a><b>1</b><b>2</b></a>` gives `{"a": [{"b": "1"}, {"b": "2"}]}`. Tag names are
lowercased and text is stripped, as gravitasml does; text beside child elements is dropped. Attributes have no
place in that shape: as in AutoGPT, they fail the node.

The input is untrusted, so parsing goes through defusedxml with DOCTYPEs refused: no entity can be declared, which
rules out entity expansion ("billion laughs") and external entities. The tree is built bottom-up as elements end,
without recursion, and nesting is bounded so the result stays encodable (JSON encoding recurses).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import errors as expat_errors

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import DefusedXMLParser
from pydantic import Field

from agentflow.blocks.sdk import Block, BlockContext, BlockError, BlockSchema, BlockSchemaOutput, BlockTestCase

__all__ = ["MAX_XML_BYTES", "MAX_XML_DEPTH", "XMLParserBlock", "parse_xml"]

MAX_XML_BYTES = 10 * 1024 * 1024  # AutoGPT's limit
MAX_XML_DEPTH = 200  # elements nested in one another

SYNTAX = "Error in input xml syntax: "  # AutoGPT's prefixes: graphs may route on them
VALIDATION = "Validation error for dict:"
_EMPTY = "XML input is empty."
_NO_ROOT = "XML must include a root element."
_TWO_ROOTS = "XML must have a single root element."
_STRAY_TEXT = "XML contains text outside the root element; wrap content in a single root tag."

_NO_ELEMENTS = expat_errors.codes[expat_errors.XML_ERROR_NO_ELEMENTS]
_JUNK_AFTER_ROOT = expat_errors.codes[expat_errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]
_TAG_MISMATCH = expat_errors.codes[expat_errors.XML_ERROR_TAG_MISMATCH]
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what expat counts as one line break


class XMLInputError(BlockError):
    """The input is not XML this block takes; the message starts with one of AutoGPT's prefixes."""


@dataclass
class _Element:
    tag: str  # as written: error messages quote it
    text: list[str] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)  # each child as its one-key dict

    def as_dict(self) -> dict[str, Any]:
        """gravitasml's shape: the text of a leaf; children merged when their tags differ, else a list."""
        key = self.tag.lower()
        if not self.children:
            return {key: "".join(self.text).strip()}
        keys = [next(iter(child)) for child in self.children]
        if len(set(keys)) == len(keys):
            return {key: {name: child[name] for name, child in zip(keys, self.children, strict=True)}}
        return {key: list(self.children)}


class _TreeBuilder:
    """The parser's target: builds the result as elements end, and remembers where parsing stopped."""

    def __init__(self) -> None:
        self.stack: list[_Element] = []
        self.result: dict[str, Any] | None = None
        self.started = False

    def start(self, tag: str, attrib: Mapping[str, str]) -> None:
        if tag.startswith("{"):  # expat resolved a namespace: `xmlns` declarations are attributes too
            raise XMLInputError(f"{SYNTAX}namespaces (xmlns) are not supported: <{tag}>")
        if attrib:
            raise XMLInputError(f"{SYNTAX}attributes are not supported: <{tag} {next(iter(attrib))}=...>")
        if len(self.stack) >= MAX_XML_DEPTH:
            raise XMLInputError(f"{VALIDATION}XML is nested deeper than {MAX_XML_DEPTH} elements.")
        self.started = True
        self.stack.append(_Element(tag))

    def end(self, tag: str) -> None:
        done = self.stack.pop().as_dict()
        if self.stack:
            self.stack[-1].children.append(done)
        else:
            self.result = done

    def data(self, text: str) -> None:
        if self.stack:  # outside the root, expat lets only whitespace through
            self.stack[-1].text.append(text)

    def close(self) -> None:
        return None


def parse_xml(text: str) -> dict[str, Any]:
    """The one-key dict of `text`'s root element. Raises XMLInputError with AutoGPT's prefixes."""
    # characters first: counting bytes would copy a huge text
    if len(text) > MAX_XML_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_XML_BYTES:
        raise BlockError(f"XML too large: over {MAX_XML_BYTES} bytes")
    if not text.strip():
        raise XMLInputError(VALIDATION + _EMPTY)
    builder = _TreeBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    try:
        parser.feed(text)
        parser.close()
    except DefusedXmlException as exc:
        refused = f"<!DOCTYPE {exc.name}>" if isinstance(exc, DTDForbidden) else "entity declarations"
        raise XMLInputError(f"{SYNTAX}{refused} refused: a DTD can declare entities that expand unbounded") from None
    except ET.ParseError as exc:
        raise XMLInputError(_explain(exc, builder, text)) from None
    except UnicodeError as exc:  # e.g. a lone surrogate, which no XML document can hold
        raise XMLInputError(f"{SYNTAX}{exc}") from None
    if builder.result is None:  # defensive: expat reports a missing root as "no element found"
        raise XMLInputError(VALIDATION + _NO_ROOT)
    return builder.result


def _explain(exc: ET.ParseError, builder: _TreeBuilder, text: str) -> str:
    """expat's error in AutoGPT's terms where AutoGPT has one (two roots, stray text, unclosed tags)."""
    if builder.result is not None and exc.code == _JUNK_AFTER_ROOT:  # the root has ended: what follows is junk
        return VALIDATION + (_TWO_ROOTS if _char_at(text, exc.position) == "<" else _STRAY_TEXT)
    if not builder.started:
        if not text.lstrip(" \t\r\n\ufeff").startswith("<"):
            return VALIDATION + _STRAY_TEXT
        if exc.code == _NO_ELEMENTS:
            return VALIDATION + _NO_ROOT
    if builder.stack and exc.code == _NO_ELEMENTS:
        return f"{SYNTAX}Unclosed tag detected in XML input: <{builder.stack[-1].tag}> ({exc})"
    if builder.stack and exc.code == _TAG_MISMATCH:
        return f"{SYNTAX}{exc} (expected </{builder.stack[-1].tag}>)"
    return f"{SYNTAX}{exc}"


def _char_at(text: str, position: tuple[int, int]) -> str:
    """The character at expat's (line from 1, column from 0, in characters), or "" past the end."""
    line, column = position
    lines = _LINE_BREAK.split(text)
    return lines[line - 1][column : column + 1] if 0 < line <= len(lines) else ""


class XMLParserBlock(Block):
    id = "286380af-9529-4b55-8be0-1d7c854abdb5"
    description = "Parses XML into a nested dict: tag names as keys, text as values, repeated tags as lists."
    categories = frozenset()

    class Input(BlockSchema):
        input_xml: str = Field(description="The XML to parse (one root element, no attributes).")

    class Output(BlockSchemaOutput):
        parsed_xml: dict[str, Any] = Field(description="The XML as a dict, keyed by the root's tag.")
        error: str = Field(default="", description="Why the XML could not be parsed.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "parsed_xml", parse_xml(input_data.input_xml)

    test_cases = (
        BlockTestCase(
            {"input_xml": "<tag1><tag2>content</tag2></tag1>"},
            [("parsed_xml", {"tag1": {"tag2": "content"}})],
            "AutoGPT's case",
        ),
        BlockTestCase(
            {"input_xml": "<a><b>1</b><b>2</b><c/></a>"},
            [("parsed_xml", {"a": [{"b": "1"}, {"b": "2"}, {"c": ""}]})],
            "repeated tags become a list of one-key dicts",
        ),
        BlockTestCase(
            {"input_xml": "<Root>\n  <Name> Ann </Name>\n  <Age>3</Age>\n</Root>"},
            [("parsed_xml", {"root": {"name": "Ann", "age": "3"}})],
            "tags lowercased, text stripped, distinct tags merged",
        ),
        BlockTestCase({"input_xml": "<a></a>"}, [("parsed_xml", {"a": ""})], "an empty element is an empty string"),
        BlockTestCase(
            {"input_xml": '<a id="1">x</a>'}, [], "attributes are not supported", error="Error in input xml syntax: "
        ),
        BlockTestCase({"input_xml": "<a><b></a>"}, [], "mismatched tags", error="mismatched tag"),
        BlockTestCase({"input_xml": "<a/><b/>"}, [], "two roots", error=VALIDATION + _TWO_ROOTS),
        BlockTestCase({"input_xml": "  "}, [], "empty", error=VALIDATION + _EMPTY),
        BlockTestCase(
            {"input_xml": '<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'}, [], "no DTD", error="<!DOCTYPE x> refused"
        ),
    )
