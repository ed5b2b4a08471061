"""CountdownTimerBlock (README, "Built-in blocks"): yields its message after a wait, `repeat` times.

AutoGPT sleeps for as long as asked, even days. A node here runs inside one Lambda invocation, and the engine's
only delayed re-run is the retry queue (docs/architecture.md, "Retries and timeouts"), which no block can ask for.
So the worker sleeps, and only for a short total wait: past MAX_WAIT_SECONDS the node fails at once, before it
yields anything, with an error naming the cap (README, "Compatibility with AutoGPT").

The sleep is injectable: a test replaces the module's `sleep`, or passes a callable as `mocks["sleep"]`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
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

__all__ = ["MAX_WAIT_SECONDS", "CountdownTimerBlock", "skip_sleep", "sleep"]

MAX_WAIT_SECONDS = 10.0  # the longest total wait (every repeat included) a node may spend sleeping

sleep: Callable[[float], None] = time.sleep  # looked up at each call, so tests can replace it

_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def skip_sleep(seconds: float) -> None:
    """A stand-in for `sleep` in test cases (`mocks={"sleep": skip_sleep}`): returns at once."""


def _sleeper(context: BlockContext) -> Callable[[float], None]:
    mocked = context.mocks.get("sleep")
    return mocked if callable(mocked) else sleep


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
                f"{wait:g} s): a node runs in one worker, and agentflow has no deferred run for longer waits"
            )
        pause = _sleeper(context)
        for _ in range(input_data.repeat):
            if wait > 0:
                pause(wait)
            yield "output_message", input_data.input_message

    test_cases = (
        BlockTestCase(
            {"seconds": 1},
            [("output_message", "timer finished")],
            "AutoGPT's case 1 (the sleep is mocked)",
            mocks={"sleep": skip_sleep},
        ),
        BlockTestCase(
            {"input_message": "Custom message"}, [("output_message", "Custom message")], "AutoGPT's case 2: no wait"
        ),
        BlockTestCase(
            {"input_message": {"k": 1}, "seconds": "2", "repeat": 3},
            [("output_message", {"k": 1})] * 3,
            "repeat yields once per round; any value passes",
            mocks={"sleep": skip_sleep},
        ),
        BlockTestCase({"repeat": 0}, [], "repeat 0 yields nothing"),
        BlockTestCase({"minutes": 1}, [], "over the cap", error="waits at most 10 s"),
        BlockTestCase({"seconds": 4, "repeat": 3}, [], "the cap counts every repeat", error="asked: 3 x 4 s"),
        BlockTestCase({"seconds": "soon"}, [], "not a number", error="seconds must be a number"),
    )
