"""Crontabs as AutoGPT takes them (5 fields + IANA time zone) -> EventBridge Scheduler ``cron(...)`` expressions.

Pure: no AWS calls. The API validates a schedule with :func:`parse_schedule`, creates the EventBridge schedule with
``ScheduleExpression=schedule.aws_expression`` and ``ScheduleExpressionTimezone=schedule.timezone``, and lists the
next fire times with :func:`next_runs`.

Grammar accepted (one field = comma-separated items; names are case-insensitive)::

    minute 0-59 | hour 0-23 | day-of-month 1-31 | month 1-12 or JAN-DEC | day-of-week 0-7 or SUN-SAT (0 and 7 = Sunday)
    item  := '*' | '*/n' | v | v-w | v-w/n | v/n          (v/n means v-<field max>/n)

plus the macros @yearly @annually @monthly @weekly @daily @midnight @hourly, expanded to their 5-field form (the
normalized ``CronSchedule.cron`` shows the expansion). The meaning of every accepted crontab is croniter's (the library
AutoGPT schedules with); the conversion is proven against it by ``tests/unit/test_cron.py``.

Conversion: each field is expanded to the set of values it matches and the set is written back in EventBridge syntax:
``*`` when it is the whole field, ``start/step`` when it is an arithmetic progression running to the end of the field
(not for day-of-week, where EventBridge has no ``/``), else a list of ``a-b`` runs and single values. Day-of-week values
shift by one (cron 0-6 = SUN-SAT, 7 = SUN; EventBridge 1-7 = SUN-SAT). Exactly one of day-of-month and day-of-week is
``?``; the year is ``*``.

Rejected (``CronError``, the message names the field and says why):

* not exactly 5 fields (no seconds, no year), ``@reboot``, unknown macros;
* values out of range, unknown names, malformed items, a step of 0;
* ``L``, ``W``, ``#``, ``?``, ``H``: EventBridge/Quartz/Jenkins extensions, not crontab syntax;
* a range whose bounds are equal (``5-5``): vixie cron reads it as the single value, croniter as the whole field;
* a wrapping range with a step (``50-10/15``): croniter's expansion of it is off by one, so its meaning is unsettled
  (a wrapping range without a step, ``FRI-MON`` or ``22-2``, is accepted and written out as a list);
* day-of-month and day-of-week both restricted: cron then fires when EITHER matches, and an EventBridge expression can
  restrict only one of them (the other must be ``?``); there is no single expression for the union;
* a day-of-month that exists in none of the months (``0 0 31 2 *``): the schedule would never run;
* an expression longer than the 256 characters CreateSchedule accepts;
* an unknown IANA time zone.

Daylight saving time: EventBridge Scheduler evaluates the expression on the wall clock of
``ScheduleExpressionTimezone``; when clocks spring forward, a fire time that falls in the skipped interval is skipped;
when they fall back, a repeated wall-clock time fires only once (AWS re:Post "How can I adjust my Amazon EventBridge
schedule for daylight saving?": "your schedule invocation gets skipped if the cron expression falls on a non-existent
date and time ... your schedule runs only once and doesn't repeat its invocation"). :func:`next_runs` reproduces that,
taking the FIRST occurrence (the earlier instant, ``fold=0``) of a repeated wall-clock time -- the documentation does
not say which of the two fires; "doesn't repeat" reads as the first fires and the repeat does not. croniter's own
tz-aware mode differs at both edges (it moves a skipped time to the first existing minute after the gap, e.g. 02:30 ->
03:00, and fires a repeated time twice), so :func:`next_runs` runs croniter on naive local wall-clock times and maps
them to instants itself.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import pairwise

from agentflow.errors import InvalidInput

__all__ = ["AWS_EXPRESSION_MAX_LENGTH", "CronError", "CronSchedule", "next_runs", "parse_schedule", "to_aws_cron"]

AWS_EXPRESSION_MAX_LENGTH = 256  # CreateSchedule ScheduleExpression: min 1, max 256 characters

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February can have a 29th

# Names in available_timezones() that are not real IANA zones EventBridge would take.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})

_Fail = Callable[[str], "CronError"]  # builds the error for one field from a problem description

_ITEM = re.compile(r"^(?:(?P<star>\*)|(?P<lo>[0-9]+|[A-Z]+)(?:-(?P<hi>[0-9]+|[A-Z]+))?)(?:/(?P<step>[0-9]+))?$")


class CronError(InvalidInput):
    """The crontab or time zone is invalid, or EventBridge Scheduler cannot express it; the message says why."""


@dataclass(frozen=True)
class CronSchedule:
    cron: str  # normalized 5-field crontab: single spaces, names upper-cased, macros expanded
    timezone: str  # IANA zone, as given (validated)
    aws_expression: str  # e.g. "cron(0 9 ? * 2-6 *)"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # highest value accepted in the text (day-of-week: 7)
    names: tuple[str, ...] = ()  # names[i] is value i + name_base
    name_base: int = 0


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS, 1)
_DOW = _Field("day-of-week", 0, 7, _DAYS, 0)
_FIELDS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)


@dataclass(frozen=True)
class _Parsed:
    normalized: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # cron numbering 0-6, Sunday = 0
    dom_restricted: bool
    dow_restricted: bool


# -- public API ---------------------------------------------------------------------------------------------------


def parse_schedule(cron: str, timezone: str) -> CronSchedule:
    """Validate a 5-field crontab and an IANA time zone, and convert the crontab for EventBridge Scheduler."""
    _check_timezone(timezone)
    parsed = _parse(cron)
    return CronSchedule(cron=parsed.normalized, timezone=timezone, aws_expression=_render_aws(parsed))


def to_aws_cron(cron: str) -> str:
    """The EventBridge Scheduler expression ``cron(m h dom mon dow *)`` equivalent to a 5-field crontab."""
    return _render_aws(_parse(cron))


def next_runs(cron: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, as EventBridge Scheduler would fire them.

    Tz-aware datetimes in ``timezone``. Fire times are croniter's matches on the zone's wall clock; a match that does
    not exist (spring-forward gap) is skipped, and a match that exists twice (fall-back overlap) fires once, at its
    first occurrence -- EventBridge Scheduler's documented behaviour (see the module docstring).
    """
    schedule = parse_schedule(cron, timezone)
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be a timezone-aware datetime")
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    after_utc = after.astimezone(UTC)
    from croniter import croniter  # here: only listing fire times needs it, and it costs a cold start ~50 ms

    # Naive start time: croniter then does pure wall-clock calendar arithmetic, with no DST adjustment of its own.
    matches = croniter(schedule.cron, after_utc.astimezone(zone).replace(tzinfo=None))
    runs: list[datetime] = []
    while len(runs) < count:
        wall: datetime = matches.get_next(datetime)
        instant = _wall_clock_instant(wall, zone)
        # None: inside a spring-forward gap, skipped. <= after: the first pass of a repeated time when `after` lies in
        # the second pass of a fall-back overlap -- that time has fired already, and fires only once.
        if instant is not None and instant > after_utc:
            runs.append(instant.astimezone(zone))
    return runs


def _wall_clock_instant(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """The UTC instant at which a naive wall-clock time of ``zone`` fires on EventBridge Scheduler.

    None if the wall-clock time does not exist in the zone (skipped by a forward transition); the earlier instant if
    it exists twice (repeated by a backward transition).
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        return None  # fold=0 on a nonexistent time resolves to another wall-clock time: the time is in a gap
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return min(first, second)


# -- validation -----------------------------------------------------------------------------------------------------


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def _check_timezone(timezone: str) -> None:
    if not isinstance(timezone, str) or timezone not in _zones():
        raise CronError(f"unknown IANA time zone {timezone!r} (expected a name such as 'Europe/London' or 'UTC')")


def _parse(cron: str) -> _Parsed:
    if not isinstance(cron, str):
        raise CronError("cron must be a string of 5 fields: minute hour day-of-month month day-of-week")
    text = cron.strip()
    if text.startswith("@"):
        macro = text.lower()
        if macro == "@reboot":
            raise CronError("'@reboot' has no time to schedule: EventBridge Scheduler runs schedules only at times")
        if macro not in _MACROS:
            raise CronError(f"unknown cron macro {text!r}; known: {', '.join(sorted(_MACROS))}")
        text = _MACROS[macro]
    if not text:
        raise CronError("cron is empty; expected 5 fields: minute hour day-of-month month day-of-week")
    if re.search(r"[^\S \t]", text):
        raise CronError("cron must be one line; separate its fields with spaces")
    fields = re.split(r"[ \t]+", text.upper())
    if len(fields) != 5:
        extra = ""
        if len(fields) == 6:
            extra = " (no seconds field and no year field: AutoGPT crontabs have exactly 5)"
        raise CronError(
            f"cron must have exactly 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}: "
            f"{cron.strip()!r}{extra}"
        )
    sets = [_expand(spec, field) for spec, field in zip(_FIELDS, fields, strict=True)]
    minutes, hours, doms, months, dows = sets
    dow_set = frozenset(d % 7 for d in dows)  # 7 = Sunday = 0
    dom_text, dow_text = fields[2], fields[4]
    # croniter's rule (the meaning AutoGPT gives the crontab): a day field is unrestricted when it is '*', or when it
    # covers every day and the OTHER field's text contains a '*'. When both day fields are restricted, cron fires on the
    # union (either matches); when one is unrestricted, on the other alone.
    dom_restricted = not (dom_text == "*" or (len(doms) == 31 and "*" in dow_text))
    dow_restricted = not (dow_text == "*" or (len(dow_set) == 7 and "*" in dom_text))
    if dom_restricted and dow_restricted:
        raise CronError(
            f"day-of-month {dom_text!r} and day-of-week {dow_text!r} are both restricted: cron then runs on days that "
            "match EITHER field, but an EventBridge cron expression can restrict only one of them (the other must be "
            "'?'), so it cannot express that union. Write '*' in the field you do not mean to restrict, or create "
            "two schedules"
        )
    if dom_restricted and not any(day <= _DAYS_IN_MONTH[month - 1] for day in doms for month in months):
        raise CronError(f"day-of-month {dom_text!r} never occurs in month {fields[3]!r}: the schedule would never run")
    return _Parsed(
        normalized=" ".join(fields),
        minutes=minutes,
        hours=hours,
        days_of_month=doms,
        months=months,
        days_of_week=dow_set,
        dom_restricted=dom_restricted,
        dow_restricted=dow_restricted,
    )


def _expand(spec: _Field, text: str) -> frozenset[int]:
    """The values one field matches (day-of-week: 0-7, 7 not yet folded onto 0)."""

    def fail(problem: str) -> CronError:
        return CronError(f"{spec.name} field {text!r}: {problem}")

    values: set[int] = set()
    items = text.split(",")
    for item in items:
        if item == "":
            raise fail("empty list item")
        if "?" in item:
            raise fail("'?' is EventBridge syntax, not crontab; write '*'")
        if "#" in item or re.fullmatch(r"L|[0-9]+L|L-[0-9]+|[0-9]+W|LW", item):
            raise fail(
                f"{item!r} uses L, W or # (Quartz/EventBridge extensions), which a 5-field crontab does not have"
            )
        if re.fullmatch(r"H(\(.*\))?(/[0-9]+)?", item):
            raise fail(f"{item!r} is a Jenkins hash (H), which a 5-field crontab does not have")
        match = _ITEM.match(item)
        if match is None:
            raise fail(f"cannot parse {item!r}; expected *, */n, a value, a range a-b, or a-b/n")
        step = int(match["step"]) if match["step"] is not None else None
        if step == 0:
            raise fail("a step of 0 is not allowed")
        if match["star"]:
            if step is None and len(items) > 1:
                raise fail("'*' cannot be combined with other items in a list")
            lo, hi = spec.low, _top(spec)
            values.update(range(lo, hi + 1, step or 1))
            continue
        lo = _value(spec, match["lo"], fail)
        if match["hi"] is None:
            if step is None:
                values.add(lo)
            else:  # v/n = v-<max>/n (croniter; EventBridge's own reading of v/n too)
                start = 0 if spec is _DOW and lo == 7 else lo
                values.update(range(start, _top(spec) + 1, step))
            continue
        hi = _value(spec, match["hi"], fail)
        values.update(_range(spec, item, lo, hi, step, fail))
    return frozenset(values)


def _top(spec: _Field) -> int:
    """The end of '*' and of 'v/n' (day-of-week: 6, Saturday; 7 is only an alias of Sunday)."""
    return 6 if spec is _DOW else spec.high


def _value(spec: _Field, token: str, fail: _Fail) -> int:
    if token.isdigit():
        value = int(token)
        if not spec.low <= value <= spec.high:
            raise fail(f"value {value} is out of range {spec.low}-{spec.high}")
        return value
    if token in spec.names:
        return spec.names.index(token) + spec.name_base
    if spec.names:
        raise fail(f"unknown name {token!r}; expected {spec.names[0]}-{spec.names[-1]}")
    raise fail(f"{token!r} is not a number; expected {spec.low}-{spec.high}")


def _range(spec: _Field, item: str, lo: int, hi: int, step: int | None, fail: _Fail) -> set[int]:
    if lo == hi:
        raise fail(
            f"range {item!r} has equal bounds, which cron implementations read differently (one value, or the whole "
            f"field); write {item.split('-')[0]!r} for one value or '*' for all"
        )
    if spec is _DOW:
        if lo == 7:
            lo = 0  # Sunday
        if hi == 7:  # "a-7" runs to Sunday at the end of the week: a..7
            return {v % 7 for v in range(lo, 8, step or 1)}
        if lo == hi:  # "7-0", "7-SUN": the same day at both ends
            raise fail(f"range {item!r} starts and ends on Sunday; write 'SUN' for one day or '*' for all")
    if lo < hi:
        return set(range(lo, hi + 1, step or 1))
    # A range that wraps around the end of the field (FRI-MON, 22-2, NOV-FEB).
    if step is not None:
        raise fail(
            f"range {item!r} wraps around the end of the field and has a step; cron implementations disagree on "
            "where such a step lands, so write the values as a list"
        )
    return set(range(lo, _top(spec) + 1)) | set(range(spec.low, hi + 1))


# -- rendering for EventBridge ------------------------------------------------------------------------------------


def _render_aws(parsed: _Parsed) -> str:
    minute = _render(parsed.minutes, 0, 59, steps=True)
    hour = _render(parsed.hours, 0, 23, steps=True)
    month = _render(parsed.months, 1, 12, steps=True)
    if parsed.dow_restricted:
        dom = "?"
        dow = _render(frozenset(d + 1 for d in parsed.days_of_week), 1, 7, steps=False)  # EventBridge: 1 = SUN
    else:
        dom = _render(parsed.days_of_month, 1, 31, steps=True) if parsed.dom_restricted else "*"
        dow = "?"
    expression = f"cron({minute} {hour} {dom} {month} {dow} *)"
    if len(expression) > AWS_EXPRESSION_MAX_LENGTH:
        raise CronError(
            f"the EventBridge expression for this crontab is {len(expression)} characters long and EventBridge "
            f"Scheduler accepts at most {AWS_EXPRESSION_MAX_LENGTH}: {expression}"
        )
    return expression


def _render(values: frozenset[int], low: int, high: int, *, steps: bool) -> str:
    ordered = sorted(values)
    if len(ordered) == high - low + 1:
        return "*"
    if steps and len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        progression = all(b - a == step for a, b in pairwise(ordered))
        if step >= 2 and progression and ordered[-1] + step > high:
            return f"{ordered[0]}/{step}"  # start/step runs to the end of the field, as in EventBridge
    parts: list[str] = []
    run_start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - run_start >= 2:
            parts.append(f"{run_start}-{previous}")
        else:
            parts.extend(str(v) for v in range(run_start, previous + 1))
        if value is not None:
            run_start = previous = value
    return ",".join(parts)
