"""ExtractTextInformation, TextReplace, the current time/date blocks and XMLParser (README, "Built-in blocks").

The blocks' own `test_cases` run here too (they are the generic runner's once registered), at several fixed clocks
and the system's: the time blocks' cases must not depend on the instant. Every time expectation below is at a fixed
clock, in 2003, 2026 and 2071, so nothing depends on today's date; DST is checked at past transitions, whose rules
no tzdata update will change.
"""

from __future__ import annotations

import calendar
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest

from agentflow.blocks import text_extract, xml_parser
from agentflow.blocks.execution import BlockRun, execute_block
from agentflow.blocks.sdk import Block, BlockContext, BlockTestCase
from agentflow.blocks.text_extract import ExtractTextInformationBlock, TextReplaceBlock
from agentflow.blocks.time_blocks import (
    GetCurrentDateAndTimeBlock,
    GetCurrentDateBlock,
    GetCurrentTimeBlock,
    TimezoneName,
)
from agentflow.blocks.xml_parser import XMLParserBlock
from agentflow.clock import system_clock

BLOCKS: list[type[Block]] = [
    ExtractTextInformationBlock,
    TextReplaceBlock,
    GetCurrentTimeBlock,
    GetCurrentDateBlock,
    GetCurrentDateAndTimeBlock,
    XMLParserBlock,
]


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, frac: float = 0.0) -> float:
    """Epoch seconds of a UTC wall time (calendar arithmetic only: independent of zoneinfo)."""
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) + frac


T2003 = at(2003, 7, 4, 12, 34, 56, 0.25)
T2026 = at(2026, 5, 17, 10, 0, 0)
T2071 = at(2071, 12, 31, 23, 59, 59)


def run(block: type[Block], data: dict[str, Any], now: float = T2026) -> BlockRun:
    return execute_block(block, data, BlockContext(clock=lambda: now))


def outputs(block: type[Block], data: dict[str, Any], now: float = T2026) -> list[tuple[str, Any]]:
    result = run(block, data, now)
    assert result.error is None, result.error
    return result.outputs


def single(block: type[Block], pin: str, data: dict[str, Any], now: float = T2026) -> Any:
    [(name, value)] = outputs(block, data, now)
    assert name == pin
    return value


def error(block: type[Block], data: dict[str, Any], now: float = T2026) -> str:
    result = run(block, data, now)
    assert result.error is not None, f"expected a failure, got {result.outputs}"
    assert result.outputs[-1] == ("error", result.error)
    return result.error


# -- each block's own cases, at several clocks -----------------------------------------------------------------

CLOCKS = {"2003": lambda: T2003, "2026": lambda: T2026, "2071": lambda: T2071, "system": system_clock}
CASES = [
    pytest.param(block, case, clock, id=f"{block.name()}-{index}-{name}")
    for block in BLOCKS
    for index, case in enumerate(block.test_cases)
    for name, clock in CLOCKS.items()
]


@pytest.mark.parametrize(("block", "case", "clock"), CASES)
def test_block_case(block: type[Block], case: BlockTestCase, clock: Any) -> None:
    result = execute_block(block, case.input, BlockContext(mocks=case.mocks, clock=clock))
    if case.error is None:
        assert result.error is None, result.error
        assert result.outputs == case.output
        assert [type(v) for _, v in result.outputs] == [type(v) for _, v in case.output]
    else:
        assert result.error is not None, f"expected failure containing {case.error!r}, got {result.outputs}"
        assert case.error in result.error
        assert result.outputs[:-1] == case.output
        assert result.outputs[-1] == ("error", result.error)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name())
def test_every_block_has_cases_and_an_error_pin(block: type[Block]) -> None:
    assert len(block.test_cases) >= 3
    assert block.Output.model_fields["error"].default == ""
    assert next(iter(block.Output.model_fields)) == "error"


# -- ExtractTextInformationBlock -------------------------------------------------------------------------------


def extract(text: Any, pattern: str, **options: Any) -> list[tuple[str, Any]]:
    return outputs(ExtractTextInformationBlock, {"text": text, "pattern": pattern, **options})


def no_match(text: str) -> list[tuple[str, Any]]:
    return [("negative", text), ("matched_results", []), ("matched_count", 0)]


def found(*values: str) -> list[tuple[str, Any]]:
    return [*(("positive", v) for v in values), ("matched_results", list(values)), ("matched_count", len(values))]


def test_extract_groups() -> None:
    text = "id=42; id=7"
    assert extract(text, r"id=(\d+)", group=1) == found("42")
    assert extract(text, r"(id)=(\d+)", group=2, find_all=True) == found("42", "7")
    assert extract(text, r"(?P<key>id)=(?P<n>\d+)", group=2)[0] == ("positive", "42")  # named groups count too
    assert extract(text, r"id=(\d+)", group=2) == no_match(text)
    assert extract(text, r"id=(\d+)", group=-1) == no_match(text)  # AutoGPT: the group lookup fails, "no match"


def test_extract_skips_matches_where_the_group_took_no_part() -> None:
    assert extract("b", "(a)?b", group=1) == no_match("b")
    assert extract("b ab b", "(a)?b", group=1, find_all=True) == found("a")
    assert extract("b ab", "(a)?b", group=1)[0] == ("positive", "a")
    assert extract("b", "(a)?b", group=0)[0] == ("positive", "b")


def test_extract_case_sensitivity() -> None:
    assert extract("Hello HELLO hello", "hello", find_all=True)[-1] == ("matched_count", 1)
    assert extract("Hello HELLO hello", "hello", find_all=True, case_sensitive=False) == found(
        "Hello", "HELLO", "hello"
    )
    assert extract("ÉTÉ", "été", case_sensitive=False)[0] == ("positive", "ÉTÉ")  # Unicode case folding


def test_extract_dot_all() -> None:
    text = "start\nend"
    assert extract(text, "start.end")[0] == ("positive", "start\nend")  # dot_all is on by default
    assert extract(text, "start.end", dot_all=False) == no_match(text)
    assert extract(text, "^end", dot_all=False) == no_match(text)  # no MULTILINE: ^ is the text's start
    assert extract(text, "(?m)^end")[0] == ("positive", "end")  # inline flags work


def test_extract_find_all_off_keeps_the_first_match_only() -> None:
    assert extract("a1 b2 c3", r"[a-z]\d") == found("a1")


def test_extract_empty_matches_are_matches() -> None:
    assert extract("ab", "x*", find_all=True) == found("", "", "")


def test_extract_non_strings_as_compact_json() -> None:
    assert extract([1, "é"], r'\[1,"é"\]')[0] == ("positive", '[1,"é"]')  # compact, not ASCII-escaped
    assert extract(12, "3") == no_match("12")  # the negative pin is a str: a number comes back as its JSON text


def test_extract_limits_matches_and_lengths() -> None:
    many = extract("a" * 1500, "a", find_all=True)
    assert many[-1] == ("matched_count", text_extract.MAX_MATCHES)
    assert len(many) == text_extract.MAX_MATCHES + 2
    long = extract("b" * 20_000, "b+")
    assert long[0] == ("positive", "b" * text_extract.MAX_MATCH_LENGTH)
    truncated = "a" * text_extract.MAX_TEXT_LENGTH + "needle"
    assert extract(truncated, "needle")[1:] == [("matched_results", []), ("matched_count", 0)]
    assert extract(truncated, "needle")[0] == ("negative", truncated)  # the negative pin is the whole text


def test_extract_timeout_takes_the_no_match_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_extract, "REGEX_TIMEOUT_SECONDS", 0.05)
    text = "a" * 40 + "!"
    assert extract(text, "(a|aa)+$") == no_match(text)  # catastrophic backtracking, stopped
    assert extract("aa", "(a|aa)+$")[0] == ("positive", "aa")  # the same pattern, on a text it can handle


def test_extract_invalid_patterns_take_the_no_match_path() -> None:
    for pattern in ["(", "[a-", "a{2,1}", "(?P<1>x)"]:
        assert extract("text", pattern) == no_match("text"), pattern


# -- TextReplaceBlock -----------------------------------------------------------------------------------------


def replace(text: str, old: str, new: str) -> Any:
    return single(TextReplaceBlock, "output", {"text": text, "old": old, "new": new})


@pytest.mark.parametrize(
    ("text", "old", "new", "expected"),
    [
        ("1+1=2", "+", "*", "1*1=2"),
        ("a.b", ".", "\\1", "a\\1b"),  # no backreferences
        ("cost: $5", "$5", "${x} & \\g<0>", "cost: ${x} & \\g<0>"),
        ("[x] (y) {z}", "[x]", "^$|?", "^$|? (y) {z}"),
        ("tab\there", "\t", "\n", "tab\nhere"),
        ("naïve café", "é", "e\u0301", "naïve cafe\u0301"),
        ("🙂🙂", "🙂", "😀", "😀😀"),
        ("C:\\dir\\file", "\\", "/", "C:/dir/file"),
        ("abc", "", "", "abc"),
        ("", "", "x", "x"),
        ("", "a", "b", ""),
        ("aXbXc", "X", "", "abc"),
    ],
)
def test_replace_is_literal(text: str, old: str, new: str, expected: str) -> None:
    assert replace(text, old, new) == expected


def test_replace_refuses_a_result_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_extract, "MAX_REPLACED_LENGTH", 10)
    assert replace("abcd", "", "-") == "-a-b-c-d-"  # 9 characters
    message = error(TextReplaceBlock, {"text": "abcde", "old": "", "new": "-"})
    assert message == "the replaced text would be 11 characters; the limit is 10"
    assert replace("x" * 20, "x" * 20, "y") == "y"  # shrinking is always fine


# -- the time blocks ------------------------------------------------------------------------------------------


def strftime(fmt: str, tz: str = "UTC") -> dict[str, Any]:
    return {"discriminator": "strftime", "format": fmt, "timezone": tz}


def iso(tz: str = "UTC", micro: bool | None = None) -> dict[str, Any]:
    fmt: dict[str, Any] = {"discriminator": "iso8601", "timezone": tz}
    if micro is not None:
        fmt["include_microseconds"] = micro
    return fmt


# a null pin is "not given": format_type=None and offset=None test the defaults


def now_time(now: float, format_type: dict[str, Any] | None = None) -> Any:
    return single(GetCurrentTimeBlock, "time", {"trigger": "go", "format_type": format_type}, now)


def now_date(now: float, offset: Any = None, format_type: dict[str, Any] | None = None) -> Any:
    return single(GetCurrentDateBlock, "date", {"trigger": "go", "offset": offset, "format_type": format_type}, now)


def now_date_time(now: float, format_type: dict[str, Any] | None = None) -> Any:
    return single(GetCurrentDateAndTimeBlock, "date_time", {"trigger": "go", "format_type": format_type}, now)


def test_time_defaults_and_formats() -> None:
    assert now_time(T2003) == "12:34:56"  # default %H:%M:%S in UTC
    assert now_time(T2026, strftime("%I:%M %p", "America/New_York")) == "06:00 AM"  # EDT
    assert now_time(T2071, strftime("%H:%M:%S %Z", "Asia/Tokyo")) == "08:59:59 JST"


def test_time_iso8601_with_and_without_microseconds() -> None:
    assert now_time(T2003, iso()) == "T12:34:56+00:00"
    assert now_time(T2003, iso(micro=True)) == "T12:34:56.250000+00:00"
    assert now_time(T2003, iso("Europe/Paris")) == "T14:34:56+02:00"
    assert now_time(T2026, iso("Asia/Kathmandu")) == "T15:45:00+05:45"
    assert now_time(T2026, iso(micro=True)) == "T10:00:00.000000+00:00"  # fixed width, even at a whole second
    assert now_time(T2071, iso("Etc/GMT+12")) == "T11:59:59-12:00"


def test_date_time_defaults_and_iso8601() -> None:
    assert now_date_time(T2026) == "2026-05-17 10:00:00"
    assert now_date_time(T2003, iso()) == "2003-07-04T12:34:56+00:00"
    assert now_date_time(T2003, iso(micro=True)) == "2003-07-04T12:34:56.250000+00:00"
    assert now_date_time(T2071, iso("Asia/Tokyo")) == "2072-01-01T08:59:59+09:00"
    assert now_date_time(T2071, iso("Etc/GMT-12", micro=False)) == "2072-01-01T11:59:59+12:00"
    assert now_date_time(T2026, strftime("%A %d %B %Y, week %V, day %j")) == "Sunday 17 May 2026, week 20, day 137"


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        # US spring forward, 2003 rules (first Sunday of April): 01:59:59 EST, then 03:00:00 EDT
        (at(2003, 4, 6, 6, 59, 59), "America/New_York", "2003-04-06T01:59:59-05:00 EST"),
        (at(2003, 4, 6, 7, 0, 0), "America/New_York", "2003-04-06T03:00:00-04:00 EDT"),
        # UK fall back (last Sunday of October): 01:00-02:00 happens twice
        (at(2003, 10, 26, 0, 59, 59), "Europe/London", "2003-10-26T01:59:59+01:00 BST"),
        (at(2003, 10, 26, 1, 0, 0), "Europe/London", "2003-10-26T01:00:00+00:00 GMT"),
        # southern hemisphere: Sydney's DST is in January
        (at(2003, 1, 15, 0, 0, 0), "Australia/Sydney", "2003-01-15T11:00:00+11:00 AEDT"),
        (at(2003, 7, 15, 0, 0, 0), "Australia/Sydney", "2003-07-15T10:00:00+10:00 AEST"),
        # Lord Howe moves by half an hour
        (at(2003, 1, 15, 0, 0, 0), "Australia/Lord_Howe", "2003-01-15T11:00:00+11:00 +11"),
        (at(2003, 7, 15, 0, 0, 0), "Australia/Lord_Howe", "2003-07-15T10:30:00+10:30 +1030"),
    ],
)
def test_dst(now: float, tz: str, expected: str) -> None:
    iso_text, zone_name = expected.split(" ")
    assert now_date_time(now, iso(tz)) == iso_text
    assert now_date_time(now, strftime("%Z", tz)) == zone_name


def test_date_offsets_are_days_in_the_past() -> None:
    jan3 = at(2003, 1, 3, 12)
    assert now_date(jan3) == "2003-01-03"
    assert now_date(jan3, 5) == "2002-12-29"  # across a year
    assert now_date(jan3, "5") == "2002-12-29"
    assert now_date(jan3, " 7 ") == "2002-12-27"  # int() takes surrounding spaces
    assert now_date(jan3, "-30") == "2003-02-02"  # negative: the future
    assert now_date(jan3, "7.5") == "2003-01-03"  # not an integer: 0
    assert now_date(jan3, "next week") == "2003-01-03"
    assert now_date(jan3, 2.9) == "2003-01-01"  # a float pin value is converted to int first (§1.7)
    assert now_date(at(2071, 3, 1, 0, 30), 1) == "2071-02-28"  # 2071 is not a leap year
    assert now_date(at(2072, 3, 1, 0, 30), 1) == "2072-02-29"  # 2072 is


def test_date_offset_counts_calendar_days_across_dst() -> None:
    noon = at(2026, 3, 9, 16)  # 12:00 EDT, the day after the US springs forward
    fmt = strftime("%Y-%m-%d %H:%M %Z", "America/New_York")
    assert now_date(noon, 0, fmt) == "2026-03-09 12:00 EDT"
    assert now_date(noon, 1, fmt) == "2026-03-08 12:00 EDT"
    assert now_date(noon, 2, fmt) == "2026-03-07 12:00 EST"  # same wall time, as AutoGPT's datetime arithmetic


def test_date_timezone_decides_the_day() -> None:
    assert now_date(T2071) == "2071-12-31"
    assert now_date(T2071, format_type=iso("Asia/Tokyo")) == "2072-01-01"
    assert now_date(T2071, format_type=iso("Etc/GMT-12")) == "2072-01-01"
    assert now_date(T2071, format_type=iso("Etc/GMT+12")) == "2071-12-31"
    assert now_date(T2071, 365, iso("Asia/Tokyo")) == "2071-01-01"  # 2071 has 365 days
    assert now_date(T2003, 0, strftime("%m/%d/%Y")) == "07/04/2003"


def test_use_user_timezone_falls_back_to_the_given_timezone() -> None:
    fmt = {**iso("Asia/Tokyo"), "use_user_timezone": True}  # no profile timezone in agentflow
    assert now_date_time(T2026, fmt) == "2026-05-17T19:00:00+09:00"


def test_time_blocks_read_the_engine_clock_only() -> None:
    calls: list[int] = []

    def clock() -> float:
        calls.append(1)
        return T2003

    for block in (GetCurrentTimeBlock, GetCurrentDateBlock, GetCurrentDateAndTimeBlock):
        assert execute_block(block, {"trigger": "x"}, BlockContext(clock=clock)).ok
    assert len(calls) == 3
    assert now_date(T2003) == "2003-07-04"  # the year proves where "now" came from


def test_every_listed_timezone_resolves() -> None:
    names = get_args(TimezoneName)
    assert len(names) == 38
    assert len(set(names)) == 38
    for name in names:
        ZoneInfo(name)


def test_format_type_schema_keeps_autogpt_discriminator_and_defaults() -> None:
    schema = GetCurrentTimeBlock.input_schema()
    format_type = schema["properties"]["format_type"]
    assert format_type["discriminator"]["propertyName"] == "discriminator"
    assert format_type["default"] == {
        "discriminator": "strftime",
        "format": "%H:%M:%S",
        "timezone": "UTC",
        "use_user_timezone": False,
    }
    assert set(schema["$defs"]) == {"TimeStrftimeFormat", "TimeISO8601Format"}
    date_schema = GetCurrentDateBlock.input_schema()["properties"]
    assert date_schema["offset"]["title"] == "Days Offset"
    assert date_schema["offset"]["default"] == 0
    assert date_schema["format_type"]["default"]["format"] == "%Y-%m-%d"
    assert GetCurrentDateAndTimeBlock.input_schema()["properties"]["format_type"]["default"]["format"] == (
        "%Y-%m-%d %H:%M:%S"
    )


# -- XMLParserBlock -------------------------------------------------------------------------------------------


def parse(xml: str) -> Any:
    return single(XMLParserBlock, "parsed_xml", {"input_xml": xml})


def parse_error(xml: str) -> str:
    return error(XMLParserBlock, {"input_xml": xml})


def test_xml_nested_structure() -> None:
    xml = """<?xml version="1.0" encoding="UTF-8"?>
    <library>
      <!-- a comment -->
      <shelf>
        <book><title>Dune</title><year>1965</year></book>
        <book><title>Emma</title><year/></book>
      </shelf>
      <owner><name>Ann &amp; Bob</name></owner>
    </library>"""
    assert parse(xml) == {
        "library": {
            "shelf": [
                {"book": {"title": "Dune", "year": "1965"}},
                {"book": {"title": "Emma", "year": ""}},
            ],
            "owner": {"name": "Ann & Bob"},
        }
    }


def test_xml_text() -> None:
    assert parse("<a>  spaced  out \n</a>") == {"a": "spaced  out"}
    assert parse("<a>line 1\nline 2</a>") == {"a": "line 1\nline 2"}
    assert parse("<a>&lt;b&gt; &#233; &#x1F642;</a>") == {"a": "<b> é 🙂"}
    assert parse("<a><![CDATA[if (x < y) {}]]></a>") == {"a": "if (x < y) {}"}
    assert parse("<a>x<!-- c -->y</a>") == {"a": "xy"}
    assert parse("<a>C:\\dir</a>") == {"a": "C:\\dir"}
    assert parse("<é>日本</é>") == {"é": "日本"}
    assert parse("<a>text <b>child</b> more</a>") == {"a": {"b": "child"}}  # text beside children is dropped


def test_xml_repeated_and_distinct_siblings() -> None:
    assert parse("<a><b>1</b><c>2</c></a>") == {"a": {"b": "1", "c": "2"}}
    assert parse("<a><b>1</b><c>2</c><b>3</b></a>") == {"a": [{"b": "1"}, {"c": "2"}, {"b": "3"}]}
    assert parse("<A><B>1</B><b>2</b></A>") == {"a": [{"b": "1"}, {"b": "2"}]}  # lowercased, then repeated


def test_xml_attributes_and_namespaces_are_refused() -> None:
    assert (
        parse_error('<a><b id="1">x</b></a>') == "Error in input xml syntax: attributes are not supported: <b id=...>"
    )
    assert parse_error('<a xmlns="urn:x"/>').startswith("Error in input xml syntax: namespaces (xmlns)")
    assert parse_error("<x:a>1</x:a>") == "Error in input xml syntax: unbound prefix: line 1, column 0"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("", "Validation error for dict:XML input is empty."),
        (" \n\t", "Validation error for dict:XML input is empty."),
        ("<!-- only a comment -->", "Validation error for dict:XML must include a root element."),
        ("<a/><b/>", "Validation error for dict:XML must have a single root element."),
        ("<a/>\n<!-- fine -->\n  <b/>", "Validation error for dict:XML must have a single root element."),
        ("<a/>tail", "Validation error for dict:XML contains text outside the root element; wrap content in a"),
        ("head<a/>", "Validation error for dict:XML contains text outside the root element;"),
        ("just text", "Validation error for dict:XML contains text outside the root element;"),
        ("<a><b>", "Error in input xml syntax: Unclosed tag detected in XML input: <b> (no element found"),
        ("<a><b></a>", "Error in input xml syntax: mismatched tag: line 1, column 8 (expected </b>)"),
        ("<A></a>", "Error in input xml syntax: mismatched tag: line 1, column 5 (expected </A>)"),
        ("<a><</a>", "Error in input xml syntax: not well-formed (invalid token): line 1, column 4"),
        ("<a>&nbsp;</a>", "Error in input xml syntax: undefined entity: line 1, column 3"),
        ("<a>\ud800</a>", "Error in input xml syntax: 'utf-8' codec can't encode character '\\ud800'"),
    ],
)
def test_xml_malformed_fails_clearly(xml: str, message: str) -> None:
    assert parse_error(xml).startswith(message)


# lol9 expands to 10^9 "lol"s: each entity is ten of the one before
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]><lolz>&lol9;</lolz>"
)


@pytest.mark.parametrize(
    ("xml", "refused"),
    [
        (BILLION_LAUGHS, "<!DOCTYPE lolz>"),
        ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "<!DOCTYPE x>"),
        ('<!DOCTYPE x [<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;]><x/>', "<!DOCTYPE x>"),
        ("<!DOCTYPE html><html/>", "<!DOCTYPE html>"),
    ],
)
def test_xml_dtds_are_refused(xml: str, refused: str) -> None:
    assert parse_error(xml) == (
        f"Error in input xml syntax: {refused} refused: a DTD can declare entities that expand unbounded"
    )


def test_xml_nesting_is_bounded() -> None:
    depth = xml_parser.MAX_XML_DEPTH
    deepest = parse("<d>" * depth + "x" + "</d>" * depth)  # through JSON encoding too
    for _ in range(depth - 1):
        deepest = deepest["d"]
    assert deepest == {"d": "x"}
    too_deep = "<d>" * (depth + 1) + "x" + "</d>" * (depth + 1)
    assert parse_error(too_deep) == f"Validation error for dict:XML is nested deeper than {depth} elements."


def test_xml_size_limit_counts_utf8_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xml_parser, "MAX_XML_BYTES", 9)
    assert parse("<a>é</a>") == {"a": "é"}  # 8 characters, 9 bytes
    assert parse_error("<a>éé</a>") == "XML too large: over 9 bytes"  # 9 characters, 11 bytes
    assert parse_error("<a>xxxxxxx</a>") == "XML too large: over 9 bytes"
