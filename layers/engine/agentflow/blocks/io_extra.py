"""More typed graph inputs (README, "Built-in blocks"): a date, a time, a table. Like every AgentInputBlock variant
they are Input blocks with static outputs and no `error` pin; the run's input of the same name replaces `value`.

Dates and times are validated by pydantic as in AutoGPT (ISO 8601: `2025-03-19`, `09:30:00`) and stored as ISO
text, since stored outputs are JSON (README, "Compatibility with AutoGPT").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from agentflow.blocks.io import AgentInputBlock
from agentflow.blocks.sdk import BlockContext, BlockSchema, BlockTestCase

__all__ = ["AgentDateInputBlock", "AgentTableInputBlock", "AgentTimeInputBlock"]

DEFAULT_COLUMNS = ("Column 1", "Column 2", "Column 3")


class AgentDateInputBlock(AgentInputBlock):
    # AutoGPT's id: its 4th group is 8b4d (the same in its io.py and its migrations).
    id = "7e198b09-4994-47db-8b4d-952d98241817"
    description = "Block for date input."

    class Input(AgentInputBlock.Input):
        value: dt.date | None = Field(default=None, description="Default date (YYYY-MM-DD).")

    class Output(BlockSchema):
        result: dt.date = Field(description="The date, as YYYY-MM-DD text.")

    test_cases = (
        BlockTestCase({"name": "date_input_1", "value": "2025-03-19"}, [("result", "2025-03-19")], "AutoGPT's case 1"),
        BlockTestCase({"name": "date_input_2", "value": "2023-12-31"}, [("result", "2023-12-31")], "AutoGPT's case 2"),
        BlockTestCase({"name": "d", "value": "2024-02-29T00:00:00"}, [("result", "2024-02-29")], "midnight datetime"),
        BlockTestCase({"name": "d"}, [], "no value yields nothing"),
        BlockTestCase({"name": "d", "value": "2023-02-29"}, [], "no such day", error="input 'value'"),
        BlockTestCase({"name": "d", "value": "19/03/2025"}, [], "not ISO", error="valid date"),
    )


class AgentTimeInputBlock(AgentInputBlock):
    id = "2a1c757e-86cf-4c7e-aacf-060dc382e434"
    description = "Block for time input."

    class Input(AgentInputBlock.Input):
        value: dt.time | None = Field(default=None, description="Default time (HH:MM:SS).")

    class Output(BlockSchema):
        result: dt.time = Field(description="The time, as HH:MM:SS text.")

    test_cases = (
        BlockTestCase({"name": "time_input_1", "value": "09:30:00"}, [("result", "09:30:00")], "AutoGPT's case 1"),
        BlockTestCase({"name": "time_input_2", "value": "23:59:59"}, [("result", "23:59:59")], "AutoGPT's case 2"),
        BlockTestCase({"name": "t", "value": "07:05"}, [("result", "07:05:00")], "seconds may be left out"),
        BlockTestCase({"name": "t", "value": "12:00:00Z"}, [("result", "12:00:00+00:00")], "an offset is kept"),
        BlockTestCase({"name": "t"}, [], "no value yields nothing"),
        BlockTestCase({"name": "t", "value": "25:00:00"}, [], "no such hour", error="input 'value'"),
    )


class AgentTableInputBlock(AgentInputBlock):
    id = "5603b273-f41e-4020-af7d-fbc9c6a8d928"
    description = "Block for table data input with customizable headers."

    class Input(AgentInputBlock.Input):
        value: list[dict[str, Any]] | None = Field(default=None, description="The rows: column name -> value.")
        column_headers: list[str] = Field(
            default_factory=lambda: list(DEFAULT_COLUMNS),
            description="The table's columns, as the UI shows them (rows are not checked against them).",
        )

    class Output(BlockSchema):
        result: list[dict[str, Any]] = Field(description="The rows, column name -> value.")

    def run(self, input_data: AgentInputBlock.Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        # Unlike the other inputs, a table with no value still yields: an empty table. (The argument is this
        # block's Input; it is typed as the base's so the override stays compatible.)
        yield "result", input_data.value if input_data.value is not None else []

    test_cases = (
        BlockTestCase(
            {
                "name": "test_table",
                "column_headers": ["Name", "Age", "City"],
                "value": [
                    {"Name": "John", "Age": "30", "City": "New York"},
                    {"Name": "Jane", "Age": "25", "City": "London"},
                ],
                "description": "Example table input",
            },
            [
                (
                    "result",
                    [
                        {"Name": "John", "Age": "30", "City": "New York"},
                        {"Name": "Jane", "Age": "25", "City": "London"},
                    ],
                )
            ],
            "AutoGPT's case",
        ),
        BlockTestCase({"name": "t"}, [("result", [])], "no value: an empty table"),
        BlockTestCase({"name": "t", "value": '[{"a": 1}]'}, [("result", [{"a": 1}])], "JSON text is parsed"),
        BlockTestCase(
            {"name": "t", "value": [1]}, [("result", [{"value": 1}])], "engine coercion wraps a non-object row"
        ),
    )
