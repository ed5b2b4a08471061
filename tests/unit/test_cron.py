"""Crontab -> EventBridge Scheduler cron(...) conversion (agentflow.triggers.cron).

The conversion is proven against two independent implementations: croniter reads the 5-field crontab (as AutoGPT
does) and pyawscron reads the converted EventBridge expression. Both must name the same values field by field, and the
same next 20 fire times in random IANA zones, DST transitions included.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from croniter import croniter
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from pyawscron import AWSCron  # type: ignore[import-untyped]

from agentflow.triggers import cron as cron_module
from agentflow.triggers.cron import CronError, CronSchedule, next_runs, parse_schedule, to_aws_cron

# -- examples -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "aws"),
    [
        ("0 9 * * 1-5", "cron(0 9 ? * 2-6 *)"),
        ("*/15 * * * *", "cron(0/15 * * * ? *)"),
        ("0 0 1 * *", "cron(0 0 1 * ? *)"),
        ("* * * * *", "cron(* * * * ? *)"),
        # Sunday is 0 and 7 in cron, 1 in EventBridge; Saturday 6 -> 7
        ("0 0 * * 0", "cron(0 0 ? * 1 *)"),
        ("0 0 * * 7", "cron(0 0 ? * 1 *)"),
        ("0 0 * * 0,7", "cron(0 0 ? * 1 *)"),
        ("0 0 * * 6", "cron(0 0 ? * 7 *)"),
        ("0 0 * * 5-7", "cron(0 0 ? * 1,6,7 *)"),
        ("0 0 * * 0-7", "cron(0 0 * * ? *)"),
        ("0 0 * * 1-7", "cron(0 0 * * ? *)"),
        # names, any case
        ("0 9 * * mon-FRI", "cron(0 9 ? * 2-6 *)"),
        ("0 9 * * Sun,sat", "cron(0 9 ? * 1,7 *)"),
        ("0 0 1 jan,Jul *", "cron(0 0 1 1,7 ? *)"),
        ("0 0 1 MAR-may *", "cron(0 0 1 3-5 ? *)"),
        # lists and ranges
        ("0,30 8-18 * * *", "cron(0,30 8-18 * * ? *)"),
        ("5,10,15,40-45 * * * *", "cron(5,10,15,40-45 * * * ? *)"),
        # steps on every field; EventBridge has no '/' in day-of-week, so those are written out
        ("*/7 */5 */3 */2 *", "cron(0/7 0/5 1/3 1/2 ? *)"),
        ("5/15 * * * *", "cron(5/15 * * * ? *)"),
        ("10-50/20 * * * *", "cron(10/20 * * * ? *)"),  # 10,30,50: the progression runs to the end of the field
        ("10-40/10 * * * *", "cron(10,20,30,40 * * * ? *)"),  # it stops short of it: written out
        ("0 */6 * * *", "cron(0 0/6 * * ? *)"),
        ("0 9-17/2 * * *", "cron(0 9,11,13,15,17 * * ? *)"),
        ("0 0 */10 * *", "cron(0 0 1/10 * ? *)"),
        ("0 0 1 */4 *", "cron(0 0 1 1/4 ? *)"),
        ("0 0 * * */2", "cron(0 0 ? * 1,3,5,7 *)"),
        ("0 0 * * 1-5/2", "cron(0 0 ? * 2,4,6 *)"),
        ("0 0 * * 1-7/2", "cron(0 0 ? * 1,2,4,6 *)"),
        ("*/90 * * * *", "cron(0 * * * ? *)"),  # a step past the end of the field leaves only the start
        ("59/15 * * * *", "cron(59 * * * ? *)"),
        # wrapping ranges without a step are written out
        ("0 0 * * FRI-MON", "cron(0 0 ? * 1,2,6,7 *)"),
        ("0 22-2 * * *", "cron(0 0-2,22,23 * * ? *)"),
        ("0 0 1 NOV-FEB *", "cron(0 0 1 1,2,11,12 ? *)"),
        # a day field covering every day is unrestricted when the other field has a '*' (croniter's rule)
        ("0 0 1-31 * */2", "cron(0 0 ? * 1,3,5,7 *)"),
        ("0 0 */1 * 0-6", "cron(0 0 * * ? *)"),
        # macros
        ("@daily", "cron(0 0 * * ? *)"),
        ("@hourly", "cron(0 * * * ? *)"),
        ("@weekly", "cron(0 0 ? * 1 *)"),
        ("@monthly", "cron(0 0 1 * ? *)"),
        ("@yearly", "cron(0 0 1 1 ? *)"),
        ("  0   9 *\t* 1-5 ", "cron(0 9 ? * 2-6 *)"),
        ("0 0 29 2 *", "cron(0 0 29 2 ? *)"),
    ],
)
def test_converts(cron: str, aws: str) -> None:
    assert to_aws_cron(cron) == aws


def test_parse_schedule_normalizes() -> None:
    assert parse_schedule("0  9 * *  mon-fri", "Europe/London") == CronSchedule(
        cron="0 9 * * MON-FRI", timezone="Europe/London", aws_expression="cron(0 9 ? * 2-6 *)"
    )
    assert parse_schedule("@daily", "UTC").cron == "0 0 * * *"


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 9 1 * 1", r"day-of-month '1' and day-of-week '1' are both restricted: cron then runs on days that match "),
        ("0 0 1-31 * 1-5", "EventBridge cron expression can restrict only one of them"),
        ("0 0 1 * 0-6", "both restricted"),
        ("0 0 * * * *", "exactly 5 fields .* got 6"),
        ("0 0 * * * 2030", "no seconds field and no year field"),
        ("0 0 * *", "exactly 5 fields .* got 4"),
        ("", "empty"),
        ("61 * * * *", "minute field '61': value 61 is out of range 0-59"),
        ("0 24 * * *", "hour field '24': value 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field '0': value 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month field '32'"),
        ("0 0 * 13 *", "month field '13': value 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field '8': value 8 is out of range 0-7"),
        ("0 0 * FOO *", "month field 'FOO': unknown name 'FOO'; expected JAN-DEC"),
        ("0 0 * * MONDAY", "unknown name 'MONDAY'"),
        ("MON * * * *", "minute field 'MON': 'MON' is not a number"),
        ("*/0 * * * *", "step of 0"),
        ("1,,2 * * * *", "empty list item"),
        ("*,5 * * * *", "'\\*' cannot be combined"),
        ("-5 * * * *", "cannot parse '-5'"),
        ("0 0 L * *", "L, W or #"),
        ("0 0 15W * *", "L, W or #"),
        ("0 0 * * 5L", "L, W or #"),
        ("0 0 * * 5#2", "L, W or #"),
        ("0 0 ? * 1", "'\\?' is EventBridge syntax"),
        ("H * * * *", "Jenkins hash"),
        ("5-5 * * * *", "equal bounds"),
        ("0 0 * * 7-0", "starts and ends on Sunday"),
        ("50-10/15 * * * *", "wraps around the end of the field and has a step"),
        ("0 0 31 2 *", "day-of-month '31' never occurs in month '2'"),
        ("0 0 30,31 FEB *", "never occurs"),
        ("@reboot", "@reboot"),
        ("@fortnightly", "unknown cron macro"),
        ("0 0\n* * *", "one line"),
    ],
)
def test_rejects(cron: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_schedule(cron, "UTC")


@pytest.mark.parametrize("zone", ["Mars/Base", "", "america/new_york", "Factory", "localtime", "../etc/passwd"])
def test_rejects_unknown_zone(zone: str) -> None:
    with pytest.raises(CronError, match="unknown IANA time zone"):
        parse_schedule("0 9 * * *", zone)


def test_unknown_zone_is_named() -> None:
    with pytest.raises(CronError, match="'Mars/Base'"):
        parse_schedule("0 9 * * *", "Mars/Base")


def test_expression_length_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_third(low: int, high: int) -> str:  # pairs of values: no run of 3, no progression, so written out
        return ",".join(str(v) for v in range(low, high + 1) if v % 3)

    # About the longest expression a 5-field crontab converts to: still within CreateSchedule's 256 characters.
    densest = to_aws_cron(f"{no_third(0, 59)} {no_third(0, 23)} {no_third(1, 31)} {no_third(1, 12)} *")
    assert 200 < len(densest) <= 256
    monkeypatch.setattr(cron_module, "AWS_EXPRESSION_MAX_LENGTH", 20)
    with pytest.raises(CronError, match=r"is 25 characters long and EventBridge Scheduler accepts at most 20"):
        to_aws_cron("0,30 9-17 * * 1-5")


def test_cron_error_is_value_error() -> None:
    assert issubclass(CronError, ValueError)


# -- DST: EventBridge Scheduler's documented behaviour --------------------------------------------------------------
# Spring forward: a fire time in the skipped interval is skipped. Fall back: a repeated time fires once (we take the
# first occurrence). croniter's tz-aware mode differs on both (it moves 02:30 to 03:00 and fires 01:30 twice), which
# is why next_runs evaluates croniter on the naive wall clock.

NY = zoneinfo.ZoneInfo("America/New_York")


def _iso(runs: list[datetime]) -> list[str]:
    return [r.isoformat() for r in runs]


def test_spring_forward_gap_is_skipped() -> None:
    runs = next_runs("30 2 * * *", "America/New_York", datetime(2026, 3, 7, 12, tzinfo=NY), 2)
    assert _iso(runs) == ["2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]
    # croniter's own tz-aware answer, which EventBridge does not follow:
    native = croniter("30 2 * * *", datetime(2026, 3, 7, 12, tzinfo=NY)).get_next(datetime)
    assert native.isoformat() == "2026-03-08T03:00:00-04:00"


def test_fall_back_overlap_fires_once_at_first_occurrence() -> None:
    runs = next_runs("30 1 * * *", "America/New_York", datetime(2026, 10, 31, 12, tzinfo=NY), 2)
    assert _iso(runs) == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    native = croniter("30 1 * * *", datetime(2026, 10, 31, 12, tzinfo=NY))
    assert [native.get_next(datetime).isoformat() for _ in range(2)] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",  # croniter fires the repeated time twice
    ]


def test_every_20_minutes_across_fall_back() -> None:
    runs = next_runs("*/20 * * * *", "America/New_York", datetime(2026, 11, 1, 0, 30, tzinfo=NY), 6)
    assert _iso(runs) == [
        "2026-11-01T00:40:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:20:00-04:00",
        "2026-11-01T01:40:00-04:00",
        "2026-11-01T02:00:00-05:00",  # 01:00-01:59 EST repeats wall-clock times that already fired
        "2026-11-01T02:20:00-05:00",
    ]


def test_starting_inside_the_second_pass_of_an_overlap() -> None:
    after = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NY)  # 01:30 EST, the repeat
    runs = next_runs("*/20 * * * *", "America/New_York", after, 2)
    assert _iso(runs) == ["2026-11-01T02:00:00-05:00", "2026-11-01T02:20:00-05:00"]


def test_london_gap_and_overlap() -> None:
    london = zoneinfo.ZoneInfo("Europe/London")
    gap = next_runs("15 1 * * *", "Europe/London", datetime(2026, 3, 28, 12, tzinfo=london), 2)
    assert _iso(gap) == ["2026-03-30T01:15:00+01:00", "2026-03-31T01:15:00+01:00"]  # 29 March 01:15 does not exist
    overlap = next_runs("15 1 * * *", "Europe/London", datetime(2026, 10, 24, 12, tzinfo=london), 2)
    assert _iso(overlap) == ["2026-10-25T01:15:00+01:00", "2026-10-26T01:15:00+00:00"]


def test_lord_howe_half_hour_dst() -> None:
    lord_howe = zoneinfo.ZoneInfo("Australia/Lord_Howe")
    # 5 April 2026 02:00 +11:00 -> 01:30 +10:30: 01:30-01:59 repeat and fire once
    back = next_runs("*/15 * * * *", "Australia/Lord_Howe", datetime(2026, 4, 5, 1, 0, tzinfo=lord_howe), 5)
    assert _iso(back) == [
        "2026-04-05T01:15:00+11:00",
        "2026-04-05T01:30:00+11:00",
        "2026-04-05T01:45:00+11:00",
        "2026-04-05T02:00:00+10:30",
        "2026-04-05T02:15:00+10:30",
    ]
    # 4 October 2026 02:00 +10:30 -> 02:30 +11:00: 02:00 and 02:15 do not exist
    forward = next_runs("*/15 * * * *", "Australia/Lord_Howe", datetime(2026, 10, 4, 1, 30, tzinfo=lord_howe), 3)
    assert _iso(forward) == ["2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"]


def test_next_runs_contract() -> None:
    after = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday, exactly on a fire time: strictly after
    runs = next_runs("0 9 * * 1-5", "UTC", after, 3)
    assert _iso(runs) == ["2026-01-06T09:00:00+00:00", "2026-01-07T09:00:00+00:00", "2026-01-08T09:00:00+00:00"]
    assert all(r.tzinfo == zoneinfo.ZoneInfo("UTC") for r in runs)
    assert next_runs("0 9 * * *", "UTC", after, 0) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        next_runs("0 9 * * *", "UTC", datetime(2026, 1, 1), 1)
    with pytest.raises(CronError):
        next_runs("0 9 1 * 1", "UTC", after, 1)
    tokyo = next_runs("0 9 * * *", "Asia/Tokyo", after, 1)
    assert tokyo[0] == datetime(2026, 1, 6, 0, 0, tzinfo=UTC)  # 09:00 JST
    assert tokyo[0].utcoffset() == timedelta(hours=9)


# -- property tests: croniter (5 fields) vs pyawscron (converted) ---------------------------------------------------

FIELDS = (
    # name, low, high accepted, top of '*', names (index + base = value), name base
    ("minute", 0, 59, 59, (), 0),
    ("hour", 0, 23, 23, (), 0),
    ("dom", 1, 31, 31, (), 0),
    ("month", 1, 12, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1),
    ("dow", 0, 7, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 0),
)


@st.composite
def _value(draw: st.DrawFn, index: int, other_than: int | None = None) -> tuple[int, str]:
    """A value of the field, as a number or (month, day-of-week) a name in any case."""
    _, low, high, _, names, base = FIELDS[index]
    if other_than is None:
        number = draw(st.integers(low, high))
    else:
        number = draw(st.integers(low, high - 1))
        number += number >= other_than
    if names and number - base < len(names) and draw(st.booleans()):
        name = names[number - base]
        return number, draw(st.sampled_from([name, name.lower(), name.capitalize()]))
    return number, str(number)


@st.composite
def _item(draw: st.DrawFn, index: int) -> str:
    _, low, _, top, _, _ = FIELDS[index]
    kind = draw(st.sampled_from(["value", "value", "range", "wrap", "star-step", "range-step", "start-step"]))
    step = draw(st.integers(1, top - low + 4))
    if kind == "value":
        return draw(_value(index))[1]
    if kind == "star-step":
        return f"*/{step}"
    a, a_text = draw(_value(index))
    if kind == "start-step":
        return f"{a_text}/{step}"
    b, b_text = draw(_value(index, other_than=a))
    lo, hi = (a_text, b_text) if a < b else (b_text, a_text)
    if kind == "range":
        return f"{lo}-{hi}"
    if kind == "wrap":  # high-low: wraps around the end of the field
        return f"{hi}-{lo}"
    return f"{lo}-{hi}/{step}"


def _field(index: int) -> st.SearchStrategy[str]:
    items = st.lists(_item(index), min_size=1, max_size=3).map(",".join)
    return st.one_of(st.just("*"), items)


@st.composite
def crontabs(draw: st.DrawFn, dst_hours: tuple[int, ...] = ()) -> str:
    """Random crontabs from the supported grammar, avoiding what EventBridge cannot express.

    Day-of-month and day-of-week are not both restricted: one of them is '*' (or a spelling of "every day" that
    croniter reads as unrestricted next to a '*'). Hours lean towards `dst_hours`, the local hours a DST transition
    skips or repeats, so that fire times land in gaps and overlaps.
    """
    minute = draw(st.one_of(_field(0), st.sampled_from(["*/15", "0,30", "*/20", "0", "45", "*/7", "10-40/15"])))
    near = ["*", "*/2", "1", "2", "0-3"] + [str(h) for h in dst_hours] + [",".join(map(str, sorted(dst_hours)))] * 3
    hour = draw(st.one_of(_field(1), st.sampled_from([n for n in near if n]))) if dst_hours else draw(_field(1))
    month = draw(st.one_of(st.just("*"), _field(3)))
    every_day_dom = st.sampled_from(["*", "*", "*", "*/1", "1-31"])
    every_day_dow = st.sampled_from(["*", "*", "*", "*/1", "0-6", "0-7", "1-7", "SUN-SAT"])
    mode = draw(st.sampled_from(["dom", "dow", "neither"]))
    if mode == "dom":
        dom, dow = draw(_field(2)), draw(every_day_dow)
    elif mode == "dow":
        dom, dow = draw(every_day_dom), draw(_field(4))
    else:
        dom, dow = draw(every_day_dom), draw(every_day_dow)
    return f"{minute} {hour} {dom} {month} {dow}"


def _parsed(cron: str) -> str:
    """The EventBridge expression, or skip the example if the crontab is one the grammar rejects on purpose."""
    try:
        return to_aws_cron(cron)
    except CronError as error:
        # The generator writes both-restricted day fields (e.g. '1-31' with '1-5'), equal-bound ranges, wrapping
        # ranges with a step, a day-of-month absent from every month, all of which are rejected by design.
        assume(False)
        raise AssertionError from error  # unreachable


def _values(expanded: Sequence[int | str], low: int, top: int) -> set[int]:
    return set(range(low, top + 1)) if expanded == ["*"] else {int(v) for v in expanded}


PROPERTY_SETTINGS = settings(
    derandomize=True, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)


@settings(PROPERTY_SETTINGS, max_examples=600)
@given(crontabs())
@example("0 9 * * 1-5")
@example("0 0 * * 5-7/2")
@example("0 0 * * 7/2")
@example("0 0 1-31 * 0-7/3")
def test_fields_agree_with_croniter(cron: str) -> None:
    """Field by field: pyawscron's reading of the converted expression = croniter's reading of the crontab."""
    aws = _parsed(cron)
    assert aws.startswith("cron(") and aws.endswith(" *)")
    assert len(aws) <= 256
    parsed = AWSCron(aws[len("cron(") : -1])
    expanded = croniter.expand(cron)[0]
    assert set(parsed.minutes) == _values(expanded[0], 0, 59)
    assert set(parsed.hours) == _values(expanded[1], 0, 23)
    assert set(parsed.months) == _values(expanded[3], 1, 12)
    dom_star, dow_star = expanded[2] == ["*"], expanded[4] == ["*"]
    assert dom_star or dow_star, "accepted a crontab croniter reads as day-of-month OR day-of-week"
    fields = aws[len("cron(") : -1].split(" ")
    assert (fields[2] == "?") != (fields[4] == "?"), "exactly one of day-of-month and day-of-week must be '?'"
    if dow_star:  # days: croniter's day-of-month alone
        assert parsed.days_of_week == []
        assert set(parsed.days_of_month) == _values(expanded[2], 1, 31)
    else:  # days: croniter's day-of-week alone, shifted to EventBridge's 1 = SUN
        assert parsed.days_of_month == []
        assert set(parsed.days_of_week) == {int(d) % 7 + 1 for d in expanded[4]}
    assert "/" not in fields[4], "EventBridge has no '/' in day-of-week"


# Zones with DST quirks are drawn more often: 30-minute DST (Lord_Howe), negative DST (Dublin), 2-hour DST (Troll),
# transitions at midnight (Santiago, Havana), a skipped day (Apia 2011), and the southern hemisphere.
DST_ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "Antarctica/Troll",
    "America/Santiago",
    "America/Havana",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Australia/Sydney",
    "America/St_Johns",
    "Asia/Tehran",
]
ALL_ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime", "posixrules"})


@cache
def _transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """UTC instants (to the minute) at which the zone's UTC offset changes during the year."""
    zone = zoneinfo.ZoneInfo(zone_name)
    found: list[datetime] = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        following = day + timedelta(hours=12)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            lo, hi = day, following
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        day = following
    return tuple(found)


@st.composite
def starts(draw: st.DrawFn, zone_name: str) -> tuple[datetime, tuple[int, ...]]:
    """A start instant (UTC), and the local hours a DST transition just after it skips or repeats.

    Three times in four (when the zone has transitions that year) the start lies up to 90 minutes or 3 days before
    a transition.
    """
    zone = zoneinfo.ZoneInfo(zone_name)
    year = draw(st.integers(2005, 2035))
    transitions = _transitions(zone_name, year)
    if transitions and draw(st.integers(0, 3)) > 0:
        transition = draw(st.sampled_from(transitions))
        before = draw(st.one_of(st.integers(0, 90), st.integers(0, 72 * 60)))
        seconds = draw(st.integers(0, 59))
        last_hour = (transition - timedelta(minutes=1)).astimezone(zone).hour
        first_hour = transition.astimezone(zone).hour
        hours = [last_hour]
        while hours[-1] != first_hour:
            hours.append((hours[-1] + 1) % 24)
        return transition - timedelta(minutes=before, seconds=seconds), tuple(hours)
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 366 * 24 * 60))), ()


def _eventbridge_instant(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """When EventBridge Scheduler fires a wall-clock time: never if it does not exist, else its first occurrence."""
    instants = []
    for fold in (0, 1):
        utc = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == wall:  # this reading of the wall clock exists
            instants.append(utc)
    return min(instants) if instants else None


def _eventbridge_runs(walls: list[datetime], zone: zoneinfo.ZoneInfo, after: datetime, count: int) -> list[datetime]:
    runs = []
    for wall in walls:
        instant = _eventbridge_instant(wall, zone)
        if instant is not None and instant > after:
            runs.append(instant)
        if len(runs) == count:
            break
    return runs


def _aws_next(aws_cron: AWSCron, after: datetime) -> datetime:
    """pyawscron's next fire time after `after` (a wall-clock time labelled UTC).

    pyawscron 1.0.7 bug: for a day-of-month list, it picks the first listed day >= the current one without checking
    that the month has it, and raises "day is out of range for month" (e.g. cron(0 0 31 * ? *) reaching February)
    instead of moving on, as EventBridge does (a day a month lacks does not fire in it). It fails only when no
    listed day of that month is left, so restarting the search at the end of the month loses no fire time; nothing
    pyawscron returns is changed.
    """
    start = after
    for _ in range(60):
        try:
            found: datetime = aws_cron.occurrence(start).next()
            return found
        except ValueError as error:
            if "day is out of range for month" not in str(error):
                raise
            month_start = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            start = (month_start + timedelta(days=32)).replace(day=1) - timedelta(minutes=1)
    raise AssertionError(f"pyawscron found no fire time after {after} in 5 years")


RUNS = 20
# Wall-clock matches drawn from each library: enough for 20 fire times even when a gap or overlap drops some (a
# minute-level schedule can lose 120 matches in Antarctica/Troll's 2-hour gap).
WALLS = RUNS + 130


@settings(PROPERTY_SETTINGS, max_examples=400)
@given(data=st.data(), zone_name=st.one_of(st.sampled_from(DST_ZONES), st.sampled_from(ALL_ZONES)))
def test_next_20_fire_times_agree(data: st.DataObject, zone_name: str) -> None:
    """croniter on the 5-field crontab and pyawscron on the converted expression name the same next 20 fire times.

    How DST is compared: EventBridge Scheduler evaluates the expression on the wall clock of the schedule's zone, so
    both libraries are run on the zone's naive local wall-clock time -- croniter with a naive start (plain calendar
    arithmetic) and pyawscron, which accepts only UTC datetimes, on the same wall-clock time labelled UTC. Their
    wall-clock match sequences must be identical: that is the conversion proof, DST-free by construction. Each
    sequence is then mapped to instants the way EventBridge Scheduler documents it fires them: a wall-clock time in a
    spring-forward gap is skipped, a wall-clock time repeated by a fall-back fires once, at its first (earlier)
    occurrence, and only instants strictly after the start count. The 20 instants from pyawscron's sequence must equal
    next_runs (which applies the same rule to croniter's sequence) -- compared as UTC instants, so a repeated
    wall-clock time can only match its chosen occurrence.
    """
    zone = zoneinfo.ZoneInfo(zone_name)
    after, dst_hours = data.draw(starts(zone_name), label="after, dst_hours")
    cron = data.draw(crontabs(dst_hours), label="cron")
    aws = _parsed(cron)
    local_start = after.astimezone(zone).replace(tzinfo=None)

    cron_walls: list[datetime] = []
    matches = croniter(cron, local_start)
    for _ in range(WALLS):
        cron_walls.append(matches.get_next(datetime))

    aws_walls: list[datetime] = []
    fake_utc = local_start.replace(tzinfo=UTC)
    aws_cron = AWSCron(aws[len("cron(") : -1])
    for _ in range(WALLS):
        fake_utc = _aws_next(aws_cron, fake_utc)
        aws_walls.append(fake_utc.replace(tzinfo=None))

    assert cron_walls == aws_walls

    expected = _eventbridge_runs(aws_walls, zone, after, RUNS)
    window = [w for w in aws_walls if w <= expected[-1].astimezone(zone).replace(tzinfo=None)]
    if any(_eventbridge_instant(w, zone) is None for w in window):
        event("a fire time fell in a DST gap")
    if any(w.replace(tzinfo=zone, fold=0).utcoffset() != w.replace(tzinfo=zone, fold=1).utcoffset() for w in window):
        event("a fire time fell in a DST overlap")
    assert len(expected) == RUNS
    runs = next_runs(cron, zone_name, after, RUNS)
    assert [r.astimezone(UTC) for r in runs] == expected
    assert all(r.tzinfo == zone for r in runs)
    assert runs == sorted(runs) and len(set(runs)) == RUNS


@settings(PROPERTY_SETTINGS, max_examples=1500)
@given(st.text(alphabet="0123456789*/,-? \tLWH#JANFEBMONSUTQ@", max_size=30))
def test_any_input_is_accepted_or_rejected_with_cron_error(text: str) -> None:
    try:
        schedule = parse_schedule(text, "UTC")
    except CronError as error:
        assert str(error)
        return
    croniter.expand(schedule.cron)  # whatever we accept, croniter (AutoGPT's reading) accepts too
