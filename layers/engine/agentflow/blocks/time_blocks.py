"""Current time and date blocks (README, "Built-in blocks").

"Now" comes only from `context.clock`, the engine's clock (agentflow.clock), never from the system: tests and
replays then control it completely. Timezones are IANA zones from zoneinfo (tzdata), so DST is applied as the
zone's rules say for that instant.

Each block's `format_type` is one of two models told apart by the key `discriminator`, as in AutoGPT, whose class
names the models keep (they name the JSON schema's definitions). The timezone sits in the format model, not on the
block, for the same reason: saved graphs carry it there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

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
    "DateISO8601Format",
    "DateStrftimeFormat",
    "GetCurrentDateAndTimeBlock",
    "GetCurrentDateBlock",
    "GetCurrentTimeBlock",
    "ISO8601Format",
    "StrftimeFormat",
    "TimeISO8601Format",
    "TimeStrftimeFormat",
    "TimezoneName",
]

_TEXT = frozenset({BlockCategory.TEXT})

# The 38 zones AutoGPT offers (a fixed list: graphs may only name these), one per UTC offset in use.
TimezoneName = Literal[
    "UTC",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Caracas",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Atlantic/South_Georgia",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Paris",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Tehran",
    "Asia/Dubai",
    "Asia/Kabul",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Yangon",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Australia/Eucla",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Noumea",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Tongatapu",
    "Pacific/Kiritimati",
    "Etc/GMT-12",
    "Etc/GMT+12",
]

_USE_USER_TIMEZONE = "Use the user's profile timezone instead (agentflow has none yet: `timezone` applies)."


class TimeStrftimeFormat(BaseModel):
    discriminator: Literal["strftime"]
    format: str = "%H:%M:%S"
    timezone: TimezoneName = "UTC"
    use_user_timezone: bool = Field(default=False, description=_USE_USER_TIMEZONE)


class TimeISO8601Format(BaseModel):
    discriminator: Literal["iso8601"]
    timezone: TimezoneName = "UTC"
    use_user_timezone: bool = Field(default=False, description=_USE_USER_TIMEZONE)
    include_microseconds: bool = False


class DateStrftimeFormat(BaseModel):
    discriminator: Literal["strftime"]
    format: str = "%Y-%m-%d"
    timezone: TimezoneName = "UTC"
    use_user_timezone: bool = Field(default=False, description=_USE_USER_TIMEZONE)


class DateISO8601Format(BaseModel):
    discriminator: Literal["iso8601"]
    timezone: TimezoneName = "UTC"
    use_user_timezone: bool = Field(default=False, description=_USE_USER_TIMEZONE)


class StrftimeFormat(BaseModel):
    discriminator: Literal["strftime"]
    format: str = "%Y-%m-%d %H:%M:%S"
    timezone: TimezoneName = "UTC"
    use_user_timezone: bool = Field(default=False, description=_USE_USER_TIMEZONE)


class ISO8601Format(BaseModel):
    discriminator: Literal["iso8601"]
    timezone: TimezoneName = "UTC"
    use_user_timezone: bool = Field(default=False, description=_USE_USER_TIMEZONE)
    include_microseconds: bool = False


def now_in(context: BlockContext, timezone: str) -> dt.datetime:
    """The engine clock's instant in `timezone`. The user-timezone override has no source yet (no profiles)."""
    return dt.datetime.fromtimestamp(context.clock(), tz=ZoneInfo(timezone))


def strftime(moment: dt.datetime | dt.date, fmt: str) -> str:
    """`moment.strftime(fmt)`, with a format it cannot take (e.g. a lone surrogate) as a clear node error."""
    try:
        return moment.strftime(fmt)
    except (ValueError, OverflowError) as exc:
        raise BlockError(f"cannot format the time with {fmt!r}: {exc}") from exc


def iso8601(moment: dt.datetime, include_microseconds: bool) -> str:
    """Always six digits when microseconds are asked for, so the width does not depend on the instant."""
    return moment.isoformat(timespec="microseconds" if include_microseconds else "seconds")


class GetCurrentTimeBlock(Block):
    id = "a892b8d9-3e4e-4e9c-9c1e-75f8efcf1bfa"
    description = "Outputs the current time (the engine's clock) in a timezone, as strftime or ISO 8601."
    categories = _TEXT

    class Input(BlockSchema):
        trigger: str = Field(description="Any value: its arrival makes the block output the current time.")
        format_type: TimeStrftimeFormat | TimeISO8601Format = Field(
            default=TimeStrftimeFormat(discriminator="strftime"),
            discriminator="discriminator",
            description="strftime with a format, or ISO 8601 (`T14:03:22+00:00`).",
        )

    class Output(BlockSchemaOutput):
        time: str = Field(description="The current time in the chosen format (default %H:%M:%S).")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        fmt = input_data.format_type
        moment = now_in(context, fmt.timezone)
        if isinstance(fmt, TimeISO8601Format):
            yield "time", "T" + iso8601(moment, fmt.include_microseconds).split("T", 1)[1]
        else:
            yield "time", strftime(moment, fmt.format)

    # The runner's clock is the system's: these cases only check what does not depend on the instant (see
    # tests/unit/test_text_time_xml_blocks.py for fixed clocks).
    test_cases = (
        BlockTestCase(
            {
                "trigger": "go",
                "format_type": {"discriminator": "strftime", "format": "%z %Z", "timezone": "Asia/Tokyo"},
            },
            [("time", "+0900 JST")],
            "the timezone applies",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"discriminator": "strftime", "format": "at %% o'clock"}},
            [("time", "at % o'clock")],
            "strftime literals",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"discriminator": "strftime", "format": "%z", "timezone": "Etc/GMT+12"}},
            [("time", "-1200")],
            "Etc/GMT+12 is UTC-12 (POSIX sign)",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"discriminator": "iso8601", "timezone": "Mars/Olympus"}},
            [],
            "only the listed timezones",
            error="input 'format_type.iso8601.timezone'",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"format": "%H"}},
            [],
            "the discriminator is required",
            error="input 'format_type'",
        ),
        BlockTestCase({}, [], "trigger is required", error="missing required input 'trigger'"),
    )


class GetCurrentDateBlock(Block):
    id = "b29c1b50-5d0e-4d9f-8f9d-1b0e6fcbf0b1"
    description = "Outputs the current date (the engine's clock) minus an offset in days, in a timezone."
    categories = _TEXT

    class Input(BlockSchema):
        trigger: str = Field(description="Any value: its arrival makes the block output the current date.")
        offset: int | str = Field(
            default=0,
            title="Days Offset",
            description="Days before today (negative: after); text that is not an integer counts as 0.",
        )
        format_type: DateStrftimeFormat | DateISO8601Format = Field(
            default=DateStrftimeFormat(discriminator="strftime"),
            discriminator="discriminator",
            description="strftime with a format, or ISO 8601 (`YYYY-MM-DD`).",
        )

    class Output(BlockSchemaOutput):
        date: str = Field(description="The date in the chosen format (default YYYY-MM-DD).")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        fmt = input_data.format_type
        offset = _days(input_data.offset)
        try:
            moment = now_in(context, fmt.timezone) - dt.timedelta(days=offset)
        except OverflowError as exc:
            raise BlockError(f"an offset of {offset} days is outside the dates this block can show") from exc
        if isinstance(fmt, DateISO8601Format):
            yield "date", moment.date().isoformat()
        else:
            yield "date", strftime(moment, fmt.format)

    test_cases = (
        BlockTestCase(
            {"trigger": "go", "offset": "7", "format_type": {"discriminator": "strftime", "format": "%z|%Z"}},
            [("date", "+0000|UTC")],
            "UTC by default",
        ),
        BlockTestCase(
            {
                "trigger": "go",
                "offset": "soon",
                "format_type": {"discriminator": "strftime", "format": "%z", "timezone": "Asia/Kathmandu"},
            },
            [("date", "+0545")],
            "a non-integer offset counts as 0",
        ),
        BlockTestCase(
            {"trigger": "go", "offset": 10**10},
            [],
            "an offset past the calendar fails clearly",
            error="outside the dates",
        ),
        BlockTestCase(
            {
                "trigger": "go",
                "offset": -1,
                "format_type": {"discriminator": "strftime", "format": "%z", "timezone": "Pacific/Kiritimati"},
            },
            [("date", "+1400")],
            "a negative offset is in the future",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"discriminator": "iso8601", "timezone": "Europe/Berlin"}},
            [],
            "only the listed timezones",
            error="input 'format_type.iso8601.timezone'",
        ),
        BlockTestCase({"offset": 1}, [], "trigger is required", error="missing required input 'trigger'"),
    )


def _days(offset: int | str) -> int:
    """`int(offset)`, as AutoGPT does: surrounding spaces are fine, anything else that is not an integer is 0."""
    try:
        return int(offset)
    except ValueError:
        return 0


class GetCurrentDateAndTimeBlock(Block):
    id = "716a67b3-6760-42e7-86dc-18645c6e00fc"
    description = "Outputs the current date and time (the engine's clock) in a timezone, as strftime or ISO 8601."
    categories = _TEXT

    class Input(BlockSchema):
        trigger: str = Field(description="Any value: its arrival makes the block output the current date and time.")
        format_type: StrftimeFormat | ISO8601Format = Field(
            default=StrftimeFormat(discriminator="strftime"),
            discriminator="discriminator",
            description="strftime with a format, or ISO 8601 / RFC 3339 with the UTC offset.",
        )

    class Output(BlockSchemaOutput):
        date_time: str = Field(description="The date and time in the chosen format (default %Y-%m-%d %H:%M:%S).")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        fmt = input_data.format_type
        moment = now_in(context, fmt.timezone)
        if isinstance(fmt, ISO8601Format):
            yield "date_time", iso8601(moment, fmt.include_microseconds)
        else:
            yield "date_time", strftime(moment, fmt.format)

    test_cases = (
        BlockTestCase(
            {
                "trigger": "go",
                "format_type": {"discriminator": "strftime", "format": "%Z %z", "timezone": "Asia/Kolkata"},
            },
            [("date_time", "IST +0530")],
            "the timezone applies",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"discriminator": "strftime", "format": "no directive"}},
            [("date_time", "no directive")],
            "a format without directives",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"discriminator": "strftime", "format": "%H\ud800"}},
            [],
            "a format strftime cannot take fails clearly",
            error="cannot format the time",
        ),
        BlockTestCase(
            {"trigger": "go", "format_type": {"discriminator": "rfc2822"}},
            [],
            "an unknown discriminator",
            error="input 'format_type'",
        ),
        BlockTestCase({"trigger": None}, [], "null is not given", error="missing required input 'trigger'"),
    )
