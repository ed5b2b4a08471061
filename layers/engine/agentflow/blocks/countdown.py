"""CountdownTimerBlock (README, "Built-in blocks"): yields its message after a wait, `repeat` times.

No function waits: the block defers its node execution (`DeferredRun`), and the engine runs it again once the wait
is over, through the delayed queue retries use (docs/architecture.md, "Retries and timeouts"). The run after the
wait (`context.deferrals` > 0) yields. AutoGPT sleeps before each repeat; here the whole wait comes first and the
repeats are yielded together at its end (README, "Compatibility with AutoGPT").
"""

from __future__ import annotations

import math
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
from agentflow.errors import DeferredRun

__all__ = ["MAX_WAIT_SECONDS", "CountdownTimerBlock"]

MAX_WAIT_SECONDS = 30 * 86_400.0  # the longest total wait (every repeat included): a month

_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _amount(value: int | str, pin: str) -> float:
    """A duration pin as a number: an int, or text holding one (blank means 0). Fractions are allowed."""
    if isinstance(value, int):
        return float(value)
    text = value.strip()
    if not text:
        return 0.0
    try:
        amount = float(text)
    except ValueError:
        raise BlockError(f"{pin} must be a number, got {value!r}") from None
    if not math.isfinite(amount):
        raise BlockError(f"{pin} must be a finite number, got {value!r}")
    return amount


class CountdownTimerBlock(Block):
    id = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71"
    description = "This block triggers after a specified duration."
    categories = frozenset({BlockCategory.TEXT})

    class Input(BlockSchema):
        input_message: Any = Field(default="timer finished", description="What to yield when the timer ends.")
        seconds: int | str = Field(default=0, description="Duration in seconds.")
        minutes: int | str = Field(default=0, description="Duration in minutes.")
        hours: int | str = Field(default=0, description="Duration in hours.")
        days: int | str = Field(default=0, description="Duration in days.")
        repeat: int = Field(default=1, description="How many times to run the timer (each waits, then yields).")

    class Output(BlockSchemaOutput):
        output_message: Any = Field(description="The message, once per repeat.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        wait = sum(_amount(getattr(input_data, pin), pin) * unit for pin, unit in _UNIT_SECONDS.items())
        total = max(wait, 0.0) * max(input_data.repeat, 0)
        if total > MAX_WAIT_SECONDS:
            raise BlockError(
                f"CountdownTimerBlock waits at most {MAX_WAIT_SECONDS:g} s in all (asked: {input_data.repeat} x "
                f"{wait:g} s)"
            )
        if total > 0 and context.deferrals == 0:
            raise DeferredRun(total, f"waiting {total:g} s")
        for _ in range(input_data.repeat):
            yield "output_message", input_data.input_message

    test_cases = (
        BlockTestCase({"seconds": 1}, [], "AutoGPT's case 1: the first run defers itself (no output yet)"),
        BlockTestCase({"seconds": 1}, [("output_message", "timer finished")], "after the wait", mocks={"deferrals": 1}),
        BlockTestCase(
            {"input_message": "Custom message"}, [("output_message", "Custom message")], "AutoGPT's case 2: no wait"
        ),
        BlockTestCase(
            {"input_message": {"k": 1}, "seconds": "2", "repeat": 3},
            [("output_message", {"k": 1})] * 3,
            "the repeats are yielded at the end of the whole wait; any value passes",
            mocks={"deferrals": 1},
        ),
        BlockTestCase({"repeat": 0}, [], "repeat 0 yields nothing"),
        BlockTestCase({"days": 31}, [], "over the cap", error="waits at most 2.592e+06 s"),
        BlockTestCase({"seconds": "soon"}, [], "not a number", error="seconds must be a number"),
    )
