"""Arithmetic and counting (README, "Built-in blocks")."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator
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

__all__ = ["CalculatorBlock", "CountItemsBlock", "Operation"]


class Operation(StrEnum):
    ADD = "Add"
    SUBTRACT = "Subtract"
    MULTIPLY = "Multiply"
    DIVIDE = "Divide"
    POWER = "Power"


_APPLY: dict[Operation, tuple[str, Callable[[float, float], Any]]] = {
    Operation.ADD: ("+", operator.add),
    Operation.SUBTRACT: ("-", operator.sub),
    Operation.MULTIPLY: ("*", operator.mul),
    Operation.DIVIDE: ("/", operator.truediv),
    Operation.POWER: ("**", operator.pow),
}


class CalculatorBlock(PureBlock):
    id = "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
    description = "Adds, subtracts, multiplies, divides or raises two numbers."
    categories = frozenset({BlockCategory.LOGIC})

    class Input(BlockSchema):
        operation: Operation = Field(description="The operation to apply to a and b.")
        a: float = Field(description="First number (numeric strings are converted, other text becomes 0).")
        b: float = Field(description="Second number (numeric strings are converted, other text becomes 0).")
        round_result: bool = Field(default=False, description="Round to an integer (banker's rounding).")

    class Output(BlockSchemaOutput):
        result: float = Field(description="The result.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        a, b = input_data.a, input_data.b
        symbol, apply = _APPLY[input_data.operation]
        expression = f"{a} {symbol} {b}"
        # Deviation from AutoGPT (which yields inf/NaN): JSON and DynamoDB cannot hold them, so fail clearly.
        try:
            result = apply(a, b)
        except ZeroDivisionError:
            reason = "zero to a negative power" if symbol == "**" else "division by zero"
            raise BlockError(f"{reason}: {expression} has no finite result") from None
        except OverflowError:
            raise BlockError(f"overflow: {expression} has no finite result") from None
        if isinstance(result, complex):
            raise BlockError(f"{expression} has no real result")
        if math.isnan(result):
            raise BlockError(f"{expression} is not a number")
        if math.isinf(result):
            raise BlockError(f"overflow: {expression} has no finite result")
        yield "result", round(result) if input_data.round_result else result

    test_cases = (
        BlockTestCase({"operation": "Add", "a": 7, "b": 34}, [("result", 41.0)], "adds"),
        BlockTestCase({"operation": "Subtract", "a": 1, "b": 3}, [("result", -2.0)], "subtracts"),
        BlockTestCase({"operation": "Multiply", "a": 2.5, "b": 4}, [("result", 10.0)], "multiplies"),
        BlockTestCase({"operation": "Divide", "a": 10, "b": 4}, [("result", 2.5)], "divides"),
        BlockTestCase({"operation": "Power", "a": 2, "b": 10}, [("result", 1024.0)], "raises"),
        BlockTestCase({"operation": "Add", "a": "3", "b": " 4.5 "}, [("result", 7.5)], "numeric strings"),
        BlockTestCase({"operation": "Add", "a": "abc", "b": 2}, [("result", 2.0)], "non-numeric text is 0"),
        BlockTestCase(
            {"operation": "Add", "a": 1, "b": 1.5, "round_result": True}, [("result", 2)], "banker's rounding 2.5"
        ),
        BlockTestCase(
            {"operation": "Add", "a": 1, "b": 2.5, "round_result": True}, [("result", 4)], "banker's rounding 3.5"
        ),
        BlockTestCase(
            {"operation": "Divide", "a": 5, "b": 0},
            [],
            "deviation: divide by zero fails instead of yielding inf",
            error="division by zero: 5.0 / 0.0 has no finite result",
        ),
        BlockTestCase(
            {"operation": "Power", "a": 0, "b": -1},
            [],
            "zero to a negative power fails",
            error="zero to a negative power: 0.0 ** -1.0 has no finite result",
        ),
        BlockTestCase({"operation": "Power", "a": 10, "b": 400}, [], "overflow fails", error="overflow: 10.0 ** 400.0"),
        BlockTestCase(
            {"operation": "Multiply", "a": 1e308, "b": 10}, [], "overflow to inf fails", error="overflow: 1e+308 *"
        ),
        BlockTestCase(
            {"operation": "Subtract", "a": "inf", "b": "inf"}, [], "NaN fails", error="inf - inf is not a number"
        ),
        BlockTestCase({"operation": "Power", "a": -8, "b": 0.5}, [], "no real root", error="has no real result"),
        BlockTestCase({"operation": "Modulo", "a": 1, "b": 2}, [], "unknown operation", error="input 'operation'"),
        BlockTestCase({"operation": "Add", "a": 1}, [], "b required", error="missing required input 'b'"),
    )


class CountItemsBlock(PureBlock):
    id = "3c9c2f42-b0c3-435f-ba35-05f7a25c772a"
    description = "Counts the items of a collection (-1 when it is not one)."
    categories = frozenset({BlockCategory.LOGIC})

    class Input(BlockSchema):
        collection: Any = Field(description="A text, list or object to count.")

    class Output(BlockSchemaOutput):
        count: int = Field(description="Number of items, or -1 for a value that is not a collection.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        collection = input_data.collection
        if isinstance(collection, (str, list, tuple, set, dict)):
            yield "count", len(collection)
        elif isinstance(collection, Iterable):
            yield "count", sum(1 for _ in collection)
        else:
            yield "count", -1

    test_cases = (
        BlockTestCase({"collection": [1, 2, 3]}, [("count", 3)], "list"),
        BlockTestCase({"collection": {"a": 1, "b": 2}}, [("count", 2)], "dict"),
        BlockTestCase({"collection": "hello"}, [("count", 5)], "text counts characters"),
        BlockTestCase({"collection": []}, [("count", 0)], "empty list"),
        BlockTestCase({"collection": 42}, [("count", -1)], "a number is not a collection"),
        BlockTestCase({"collection": True}, [("count", -1)], "neither is a bool"),
        BlockTestCase({}, [], "collection required", error="missing required input 'collection'"),
    )
