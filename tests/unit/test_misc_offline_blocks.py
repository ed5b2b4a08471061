"""Offline blocks ported from AutoGPT: text tools, CSV reading, sampling, typed graph inputs, the countdown timer.

Each block's own test cases run here as tests/unit/test_blocks.py runs registered blocks' cases, then edge cases.
No test sleeps or reads the wall clock: the countdown defers its node instead of sleeping.
"""

from __future__ import annotations

import codecs
import random
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentflow.blocks.countdown import MAX_WAIT_SECONDS, CountdownTimerBlock
from agentflow.blocks.execution import BlockRun, execute_block
from agentflow.blocks.io import AgentInputBlock
from agentflow.blocks.io_extra import AgentDateInputBlock, AgentTableInputBlock, AgentTimeInputBlock
from agentflow.blocks.sdk import Block, BlockContext, BlockError, BlockType
from agentflow.blocks.tabular import DataSamplingBlock, ReadSpreadsheetBlock
from agentflow.blocks.text_tools import (
    CodeExtractionBlock,
    TextDecoderBlock,
    TextEncoderBlock,
    WordCharacterCountBlock,
    decode_escapes,
)

BLOCKS: list[type[Block]] = [
    CodeExtractionBlock,
    WordCharacterCountBlock,
    TextEncoderBlock,
    TextDecoderBlock,
    ReadSpreadsheetBlock,
    DataSamplingBlock,
    AgentDateInputBlock,
    AgentTimeInputBlock,
    AgentTableInputBlock,
    CountdownTimerBlock,
]


def run(block: type[Block], data: dict[str, Any], context: BlockContext | None = None) -> BlockRun:
    return execute_block(block, data, context or BlockContext())


def ok(block: type[Block], data: dict[str, Any], context: BlockContext | None = None) -> list[tuple[str, Any]]:
    result = run(block, data, context)
    assert result.error is None, result.error
    return result.outputs


def failure(block: type[Block], data: dict[str, Any]) -> str:
    result = run(block, data)
    assert result.error is not None, f"expected a failure, got {result.outputs}"
    assert result.outputs[-1] == ("error", result.error)
    return result.error


# -- the blocks' own cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name() for b in BLOCKS])
def test_every_block_has_cases_and_a_json_info(block: type[Block]) -> None:
    assert len(block.test_cases) >= 3
    info = block.info()
    assert info["id"] == block.id and info["name"] == block.name()


def test_uuids_are_autogpts() -> None:
    assert {b.name(): b.id for b in BLOCKS} == {
        "CodeExtractionBlock": "d3a7d896-3b78-4f44-8b4b-48fbf4f0bcd8",
        "WordCharacterCountBlock": "ab2a782d-22cf-4587-8a70-55b59b3f9f90",
        "TextEncoderBlock": "5185f32e-4b65-4ecf-8fbb-873f003f09d6",
        "TextDecoderBlock": "2570e8fe-8447-43ed-84c7-70d657923231",
        "ReadSpreadsheetBlock": "acf7625e-d2cb-4941-bfeb-2819fc6fc015",
        "DataSamplingBlock": "4a448883-71fa-49cf-91cf-70d793bd7d87",
        "AgentDateInputBlock": "7e198b09-4994-47db-8b4d-952d98241817",
        "AgentTimeInputBlock": "2a1c757e-86cf-4c7e-aacf-060dc382e434",
        "AgentTableInputBlock": "5603b273-f41e-4020-af7d-fbc9c6a8d928",
        "CountdownTimerBlock": "d67a9c52-5e4e-11e2-bcfd-0800200c9a71",
    }


# -- CodeExtractionBlock -----------------------------------------------------------------------------------


def test_code_extraction_of_several_languages() -> None:
    text = (
        "Intro\n```py\na = 1\n```\n```TypeScript\nlet x: number;\n```\n```sql \t\nSELECT 1;\n```\n"
        "```sh\nls\n```\n```shell\npwd\n```\n```yml\nk: v\n```\n```c#\nvar y;\n```\nOutro"
    )
    assert ok(CodeExtractionBlock, {"text": text}) == [
        ("python", "a = 1"),
        ("sql", "SELECT 1;"),
        ("csharp", "var y;"),
        ("bash", "ls\n\npwd"),
        ("yaml", "k: v"),
        ("typescript", "let x: number;"),
        ("remaining_text", "Intro\nOutro"),
    ]


def test_code_extraction_with_no_code_yields_only_the_text() -> None:
    assert ok(CodeExtractionBlock, {"text": "  just prose  "}) == [("remaining_text", "just prose")]


def test_code_extraction_with_only_code_yields_no_remaining_text() -> None:
    assert ok(CodeExtractionBlock, {"text": "```css\na { color: red }\n```"}) == [("css", "a { color: red }")]


def test_code_extraction_keeps_what_it_does_not_extract() -> None:
    # a plain fence, a tag that only starts like a known one, no newline before the closing fence
    for text in ("```\nplain\n```", "```javas\nx\n```", "```python\nprint(1)```"):
        assert ok(CodeExtractionBlock, {"text": text}) == [("remaining_text", text)]


def test_code_extraction_removes_exactly_what_it_extracts_in_any_case() -> None:
    outputs = ok(CodeExtractionBlock, {"text": "before\n```PYTHON\nx = 1\n```\nafter"})
    assert outputs == [("python", "x = 1"), ("remaining_text", "before\nafter")]


def test_empty_code_blocks_are_dropped() -> None:
    assert ok(CodeExtractionBlock, {"text": "a\n```python\n   \n```\nb"}) == [("remaining_text", "a\nb")]


# -- TextEncoderBlock / TextDecoderBlock -------------------------------------------------------------------


def encode(text: str) -> str:
    outputs = ok(TextEncoderBlock, {"text": text})
    assert [pin for pin, _ in outputs] == ["encoded_text"]
    value = outputs[0][1]
    assert isinstance(value, str)
    return value


def decode(text: str) -> str:
    outputs = ok(TextDecoderBlock, {"text": text})
    assert [pin for pin, _ in outputs] == ["decoded_text"]
    value = outputs[0][1]
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize(
    "text",
    ["", "plain", "q\"u'o", "back\\slash\\n", "\\☃", "tab\tnul\x00bell\a", "é ☃ 😀 \u0100", "a\\\nb", "\\\\\\"],
)
def test_encode_then_decode_round_trips(text: str) -> None:
    encoded = encode(text)
    assert encoded.isascii()
    assert decode(encoded) == text


@given(st.text())
def test_round_trip_property(text: str) -> None:
    encoded = codecs.encode(text, "unicode_escape").decode("ascii")
    assert decode_escapes(encoded) == text


@pytest.mark.parametrize(
    "text",
    ["a\\nb\\tc", "\\x41\\x7e", "\\u00e9\\U0001F600", "\\0\\12\\101\\377", "\\'\\\"\\\\", "\\a\\b\\f\\v\\r", "x\\\ny"],
)
def test_decoder_agrees_with_pythons_codec_on_ascii(text: str) -> None:
    assert decode(text) == codecs.decode(text.encode("ascii"), "unicode_escape")


def test_decoder_keeps_non_ascii_and_unknown_escapes() -> None:
    assert decode("café \\d ☃") == "café \\d ☃"
    assert decode("\\☃") == "\\☃"  # a backslash before a non-ASCII character is no escape
    assert decode("\\N{SNOWMAN}\\N{latin small letter e with acute}") == "☃é"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ab\\x4g", "'\\\\x4' at position 2: truncated \\xXX escape"),
        ("\\u12", "truncated \\uXXXX escape"),
        ("\\U0011ffff", "illegal Unicode character"),
        ("\\N{NO SUCH CHARACTER}", "unknown Unicode character name"),
        ("\\N", "malformed \\N character escape"),
        ("\\N{}", "malformed \\N character escape"),
        ("tail\\", "at position 4: \\ at end of string"),
    ],
)
def test_decoder_rejects_malformed_escapes(text: str, reason: str) -> None:
    error = failure(TextDecoderBlock, {"text": text})
    assert error.startswith("invalid escape sequence ")
    assert reason in error
    with pytest.raises(BlockError):
        decode_escapes(text)


# -- WordCharacterCountBlock -------------------------------------------------------------------------------


def test_word_count_of_unicode_whitespace() -> None:
    assert ok(WordCharacterCountBlock, {"text": "a\u00a0b\u2003c"}) == [("word_count", 3), ("character_count", 5)]


# -- ReadSpreadsheetBlock ----------------------------------------------------------------------------------


def rows(contents: str, **options: Any) -> Any:
    outputs = ok(ReadSpreadsheetBlock, {"contents": contents, **options})
    assert [pin for pin, _ in outputs] == ["rows"]
    return outputs[0][1]


def test_csv_quoting() -> None:
    text = 'name,quote\n"Smith, J","He said ""hi""\nand left"\n'
    assert rows(text) == [{"name": "Smith, J", "quote": 'He said "hi"\nand left'}]


def test_csv_escapechar_and_no_escapechar() -> None:
    assert rows("a,b\n1\\,5,2") == [{"a": "1,5", "b": "2"}]
    assert rows("a,b\n1\\,5,2", escapechar="") == [{"a": "1\\", "b": "5"}]


def test_csv_header_only_and_blank_lines() -> None:
    assert rows("a,b\n") == []
    assert rows("a,b\n\n1,2\n\n\n3,4\n") == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_csv_short_and_long_rows() -> None:
    assert rows("a,b\n1\n1,2,3") == [{"a": "1"}, {"a": "1", "b": "2"}]


def test_csv_skip_columns_by_name_and_rows_past_the_end() -> None:
    assert rows("a,b,c\n1,2,3", skip_columns=["b"]) == [{"a": "1", "c": "3"}]
    assert rows("a,b\n1,2", skip_rows=5) == []


def test_csv_byte_order_mark_and_strip() -> None:
    assert rows("\ufeff a ,b\n 1 , 2 ") == [{"a": "1", "b": "2"}]
    assert rows(" a ,b\n 1 ,2", strip=False) == [{" a ": " 1 ", "b": "2"}]


def test_csv_no_rows_one_at_a_time_yields_nothing() -> None:
    assert ok(ReadSpreadsheetBlock, {"contents": "a,b", "produce_singular_result": True}) == []


def test_csv_file_input_is_refused_even_with_contents() -> None:
    error = failure(ReadSpreadsheetBlock, {"contents": "a\n1", "file_input": "data:text/csv;base64,YQoxCg=="})
    assert "no file store" in error


def test_csv_errors_are_clear() -> None:
    assert "invalid CSV options" in failure(ReadSpreadsheetBlock, {"contents": "a", "quotechar": ""})
    assert "invalid CSV options" in failure(ReadSpreadsheetBlock, {"contents": "a", "escapechar": '"'})
    assert "invalid CSV at line 2" in failure(ReadSpreadsheetBlock, {"contents": "a\n" + "x" * 200_000})


# -- DataSamplingBlock -------------------------------------------------------------------------------------

DATA = [{"id": i, "group": i % 3, "weight": i % 2} for i in range(12)]


def sample(method: str, size: int, seed: int | None = 7, **options: Any) -> tuple[list[Any], list[int]]:
    data = options.pop("data", DATA)
    outputs = ok(
        DataSamplingBlock,
        {"data": data, "sample_size": size, "sampling_method": method, "random_seed": seed, **options},
    )
    assert [pin for pin, _ in outputs] == ["sampled_data", "sample_indices"]
    sampled, indices = outputs[0][1], outputs[1][1]
    assert sampled == [data[i] for i in indices]
    return sampled, indices


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("random", {}),
        ("systematic", {}),
        ("stratified", {"stratify_key": "group"}),
        ("weighted", {"weight_key": "weight"}),
        ("reservoir", {}),
        ("cluster", {"cluster_key": "group"}),
    ],
)
def test_a_seed_gives_the_same_sample_every_time(method: str, options: dict[str, Any]) -> None:
    first = sample(method, 4, seed=123, **options)
    assert sample(method, 4, seed=123, **options) == first
    assert len(first[1]) == 4


def test_random_matches_pythons_generator_for_the_seed() -> None:
    assert sample("random", 5, seed=99)[1] == random.Random(99).sample(range(12), 5)


def test_the_process_wide_generator_is_left_alone() -> None:
    random.seed(1)
    expected = random.random()
    random.seed(1)
    sample("random", 3, seed=5)
    assert random.random() == expected


def test_systematic_takes_every_step_th_item() -> None:
    indices = sample("systematic", 4)[1]
    assert [b - a for a, b in pairwise(indices)] == [3, 3, 3]
    assert 0 <= indices[0] < 3


def test_top_bottom_and_reservoir() -> None:
    assert sample("top", 3)[1] == [0, 1, 2]
    assert sample("bottom", 3)[1] == [9, 10, 11]
    reservoir = sample("reservoir", 5)[1]
    assert len(set(reservoir)) == 5 and all(0 <= i < 12 for i in reservoir)


def test_stratified_takes_each_group_in_proportion() -> None:
    sampled, _ = sample("stratified", 6, stratify_key="group")
    assert Counter(item["group"] for item in sampled) == {0: 2, 1: 2, 2: 2}


def test_stratified_never_asks_a_full_stratum_for_more() -> None:
    # AutoGPT grows the largest stratum (3 items) to 4 here and crashes in random.sample.
    data = [{"k": name} for name in "aaabbbcccd"]
    sampled, indices = sample("stratified", 9, data=data, stratify_key="k")
    assert Counter(item["k"] for item in sampled) == {"a": 3, "b": 3, "c": 2, "d": 1}
    assert len(set(indices)) == 9


def test_stratified_with_list_items_reads_an_index() -> None:
    data = [["x", 1], ["y", 2], ["x", 3], ["y", 4]]
    sampled, _ = sample("stratified", 2, data=data, stratify_key="0")
    assert sorted(item[0] for item in sampled) == ["x", "y"]


def test_weighted_never_draws_a_zero_weight() -> None:
    sampled, _ = sample("weighted", 8, weight_key="weight")
    assert all(item["weight"] == 1 for item in sampled)


def test_cluster_takes_whole_clusters() -> None:
    sampled, _ = sample("cluster", 4, cluster_key="group")
    assert len({item["group"] for item in sampled}) == 1  # one cluster drawn holds the 4 items asked for


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sampling_method": "weighted"}, "Weight key must be provided for weighted sampling."),
        ({"sampling_method": "cluster"}, "Cluster key must be provided for cluster sampling."),
        ({"sampling_method": "weighted", "weight_key": "nope"}, "Weight value for key 'nope' is None"),
        ({"sampling_method": "stratified", "stratify_key": "nope"}, "Stratify value for key 'nope' is None"),
        ({"sampling_method": "weighted", "weight_key": "w", "data": [{"w": "x"}]}, "cannot be converted to a number"),
        ({"sampling_method": "weighted", "weight_key": "w", "data": [{"w": -1}]}, "finite number, 0 or more"),
        ({"sampling_method": "weighted", "weight_key": "w", "data": [{"w": 0}]}, "every weight under key 'w' is 0"),
        ({"sampling_method": "cluster", "cluster_key": "5", "data": [[1]]}, "does not have the cluster key '5'"),
        ({"sampling_method": "stratified", "stratify_key": "a", "data": [[1]]}, "Stratify key 'a' not found"),
        ({"sample_size": -1}, "sample_size must not be negative"),
        ({"accumulate": True, "sample_size": 20}, "accumulate: only 12 items for a sample of 20"),
    ],
)
def test_sampling_errors(options: dict[str, Any], message: str) -> None:
    data = {"data": DATA, "sample_size": 1, **options}
    assert message in failure(DataSamplingBlock, data)


def test_a_sample_of_zero_is_empty() -> None:
    for method in ("random", "systematic", "top", "bottom", "reservoir"):
        assert sample(method, 0) == ([], [])


def test_accumulate_with_enough_data_samples_like_autogpt_on_a_fresh_worker() -> None:
    assert sample("top", 2, accumulate=True)[1] == [0, 1]


def test_without_a_seed_the_sample_is_still_valid() -> None:
    sampled, indices = sample("random", 12, seed=None)
    assert sorted(indices) == list(range(12))
    assert len(sampled) == 12


# -- AgentDateInputBlock / AgentTimeInputBlock / AgentTableInputBlock --------------------------------------


@pytest.mark.parametrize("block", [AgentDateInputBlock, AgentTimeInputBlock, AgentTableInputBlock])
def test_typed_inputs_are_graph_inputs(block: type[Block]) -> None:
    assert issubclass(block, AgentInputBlock)
    assert block.block_type is BlockType.INPUT
    assert block.static_output is True
    assert not block.has_error_pin()
    assert block.required_inputs() == {"name"}


@pytest.mark.parametrize(
    "value", ["2025-3-19", "2025-03-19T10:30:00", "tomorrow", "2025-00-10", [2025, 3, 19], "2025-03-19 junk"]
)
def test_date_input_rejects_what_is_not_a_date(value: Any) -> None:
    error = failure(AgentDateInputBlock, {"name": "d", "value": value})
    assert error.startswith("invalid input for AgentDateInputBlock: input 'value'")


@pytest.mark.parametrize("value", ["9:30", "09:60:00", "noon", "24:00:00", "09:30:00+25:00"])
def test_time_input_rejects_what_is_not_a_time(value: Any) -> None:
    error = failure(AgentTimeInputBlock, {"name": "t", "value": value})
    assert error.startswith("invalid input for AgentTimeInputBlock: input 'value'")


def test_time_input_keeps_fractions_of_a_second() -> None:
    assert ok(AgentTimeInputBlock, {"name": "t", "value": "09:30:00.250"}) == [("result", "09:30:00.250000")]


def test_table_input_default_headers_and_schema() -> None:
    field = AgentTableInputBlock.Input.model_fields["column_headers"]
    assert field.get_default(call_default_factory=True) == ["Column 1", "Column 2", "Column 3"]
    assert list(AgentTableInputBlock.Input.model_fields)[-1] == "column_headers"


# -- CountdownTimerBlock -----------------------------------------------------------------------------------


def test_countdown_defers_its_first_run_for_the_whole_wait() -> None:
    result = run(CountdownTimerBlock, {"input_message": "go", "seconds": "1.5", "minutes": "0.1", "repeat": 2})
    assert result.error is None and result.outputs == [] and result.deferred_seconds == pytest.approx(15.0)


def test_countdown_yields_every_repeat_after_the_wait() -> None:
    after = BlockContext(deferrals=1)
    data = {"input_message": "go", "seconds": 3, "repeat": 2}
    assert ok(CountdownTimerBlock, data, after) == [("output_message", "go"), ("output_message", "go")]


def test_countdown_zero_and_negative_waits_yield_at_once() -> None:
    assert ok(CountdownTimerBlock, {}) == [("output_message", "timer finished")]
    assert ok(CountdownTimerBlock, {"seconds": -5, "repeat": 2}) == [("output_message", "timer finished")] * 2
    assert ok(CountdownTimerBlock, {"seconds": "  "}) == [("output_message", "timer finished")]


@pytest.mark.parametrize(("data", "asked"), [({"days": 31}, "1 x 2.6784e+06 s"), ({"days": 16, "repeat": 2}, "2 x")])
def test_countdown_over_the_cap_fails_before_waiting(data: dict[str, Any], asked: str) -> None:
    result = run(CountdownTimerBlock, data)
    assert result.error is not None and result.deferred_seconds is None
    assert result.error.startswith(f"CountdownTimerBlock waits at most {MAX_WAIT_SECONDS:g} s in all")
    assert f"(asked: {asked}" in result.error


@pytest.mark.parametrize("value", ["soon", "inf", "nan"])
def test_countdown_rejects_durations_that_are_not_numbers(value: str) -> None:
    assert "seconds must be a" in failure(CountdownTimerBlock, {"seconds": value})
