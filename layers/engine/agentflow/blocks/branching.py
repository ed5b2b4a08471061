"""Branching blocks (README, "Built-in blocks")."""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterator
from enum import StrEnum
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
from agentflow.coercion import convert

__all__ = ["ComparisonOperator", "ConditionBlock", "IfInputMatchesBlock"]


class ComparisonOperator(StrEnum):
    EQUAL = "=="
    NOT_EQUAL = "!="
    GREATER_THAN = ">"
    LESS_THAN = "<"
    GREATER_THAN_OR_EQUAL = ">="
    LESS_THAN_OR_EQUAL = "<="


_COMPARE: dict[ComparisonOperator, Callable[[Any, Any], Any]] = {
    ComparisonOperator.EQUAL: operator.eq,
    ComparisonOperator.NOT_EQUAL: operator.ne,
    ComparisonOperator.GREATER_THAN: operator.gt,
    ComparisonOperator.LESS_THAN: operator.lt,
    ComparisonOperator.GREATER_THAN_OR_EQUAL: operator.ge,
    ComparisonOperator.LESS_THAN_OR_EQUAL: operator.le,
}


def _numeric_or_stripped(value: Any) -> Any:
    """Strings are stripped and read as floats when they parse, so "10" == 10 and " 5 " < 6."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        return text


class ConditionBlock(PureBlock):
    id = "715696a0-e1da-45c8-b209-c2fa9c3b0be6"
    description = "Compares two values and routes to yes_output or no_output."
    categories = frozenset({BlockCategory.LOGIC})

    class Input(BlockSchema):
        value1: Any = Field(description="Left operand. Numeric strings compare as numbers.")
        operator: ComparisonOperator = Field(description="The comparison.")
        value2: Any = Field(description="Right operand. Numeric strings compare as numbers.")
        yes_value: Any = Field(default=None, description="Sent on yes_output; defaults to the converted value1.")
        no_value: Any = Field(default=None, description="Sent on no_output; defaults to the converted value2.")

    class Output(BlockSchemaOutput):
        result: bool = Field(description="The comparison's result.")
        yes_output: Any = Field(description="yes_value, when the comparison holds.")
        no_output: Any = Field(description="no_value, when it does not.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        value1 = _numeric_or_stripped(input_data.value1)
        value2 = _numeric_or_stripped(input_data.value2)
        try:
            result = bool(_COMPARE[input_data.operator](value1, value2))
        except Exception as exc:
            raise BlockError(f"Comparison failed: {exc}") from exc
        yield "result", result
        # AutoGPT quirk kept on purpose (graphs rely on it): no_value defaults to value2, not value1.
        if result:
            yield "yes_output", input_data.yes_value if input_data.yes_value is not None else value1
        else:
            yield "no_output", input_data.no_value if input_data.no_value is not None else value2

    test_cases = (
        BlockTestCase(
            {"value1": 10, "operator": ">", "value2": 5},
            [("result", True), ("yes_output", 10)],
            "yes defaults to value1",
        ),
        BlockTestCase(
            {"value1": 1, "operator": ">", "value2": 5},
            [("result", False), ("no_output", 5)],
            "quirk: no_output defaults to value2, not value1",
        ),
        BlockTestCase(
            {"value1": "10", "operator": "==", "value2": 10},
            [("result", True), ("yes_output", 10.0)],
            "numeric strings compare as floats and come out as floats",
        ),
        BlockTestCase(
            {"value1": " 5 ", "operator": "<", "value2": "6"},
            [("result", True), ("yes_output", 5.0)],
            "strings are stripped before parsing",
        ),
        BlockTestCase(
            {"value1": " abc ", "operator": "==", "value2": "abc"},
            [("result", True), ("yes_output", "abc")],
            "non-numeric strings are compared stripped",
        ),
        BlockTestCase(
            {"value1": 3, "operator": "!=", "value2": 3, "yes_value": "y", "no_value": 0},
            [("result", False), ("no_output", 0)],
            "falsy explicit no_value is honoured",
        ),
        BlockTestCase(
            {"value1": 3, "operator": ">=", "value2": 3, "yes_value": "", "no_value": "n"},
            [("result", True), ("yes_output", "")],
            "falsy explicit yes_value is honoured",
        ),
        BlockTestCase(
            {"value1": 2, "operator": "<=", "value2": 1, "no_value": None},
            [("result", False), ("no_output", 1)],
            "null no_value falls back to value2",
        ),
        BlockTestCase(
            {"value1": "abc", "operator": ">", "value2": 5},
            [],
            "an impossible comparison fails and yields nothing",
            error="Comparison failed: '>' not supported",
        ),
        BlockTestCase({"value1": 1, "operator": "=~", "value2": 1}, [], "unknown operator", error="input 'operator'"),
        BlockTestCase({"operator": "=="}, [], "both values required", error="'value1'"),
    )


class IfInputMatchesBlock(PureBlock):
    id = "6dbbc4b3-ca6c-42b6-b508-da52d23e13f2"
    description = "Checks whether the input equals a value and routes to yes_output or no_output."
    categories = frozenset({BlockCategory.LOGIC})

    class Input(BlockSchema):
        input: Any = Field(description="The value to check.")
        value: Any = Field(description="The value to match; converted to the input's type first.")
        yes_value: Any = Field(default=None, description="Sent on yes_output on a match.")
        no_value: Any = Field(default=None, description="Sent on no_output otherwise.")

    class Output(BlockSchemaOutput):
        result: bool = Field(description="Whether the input matched.")
        yes_output: Any = Field(description="yes_value, on a match.")
        no_output: Any = Field(description="no_value, otherwise.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        value = input_data.value
        if input_data.input != value:
            # Lossy on purpose (AutoGPT): input=10 matches value="10.7". Conversion errors are ignored.
            with contextlib.suppress(ValueError):
                value = convert(value, type(input_data.input))
        if input_data.input == value:
            yield "result", True
            yield "yes_output", input_data.yes_value
        else:
            yield "result", False
            yield "no_output", input_data.no_value

    test_cases = (
        BlockTestCase(
            {"input": "a", "value": "a", "yes_value": "Y", "no_value": "N"},
            [("result", True), ("yes_output", "Y")],
            "match",
        ),
        BlockTestCase(
            {"input": "a", "value": "b", "yes_value": "Y", "no_value": "N"},
            [("result", False), ("no_output", "N")],
            "no match",
        ),
        BlockTestCase({"input": 10, "value": "10"}, [("result", True), ("yes_output", None)], "no fallback"),
        BlockTestCase(
            {"input": 10, "value": "10.7"}, [("result", True), ("yes_output", None)], "lossy: truncated to int"
        ),
        BlockTestCase(
            {"input": True, "value": "true", "yes_value": 1}, [("result", True), ("yes_output", 1)], "to bool"
        ),
        BlockTestCase({"input": [1, 2], "value": "[1, 2]"}, [("result", True), ("yes_output", None)], "JSON list text"),
        BlockTestCase({"input": 1, "value": 2}, [("result", False), ("no_output", None)], "no_output is null"),
        BlockTestCase({"input": 1}, [], "value is required", error="missing required input 'value'"),
    )
