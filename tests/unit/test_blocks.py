"""Every built-in block's own test cases, the registry against AutoGPT's ids and pins, and the engine rules every
block follows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr

from agentflow.blocks import (
    BLOCKS,
    Block,
    BlockCategory,
    BlockContext,
    BlockError,
    BlockInputError,
    BlockRun,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
    BlockType,
    all_blocks,
    build_input,
    execute_block,
    get_block,
)
from agentflow.credentials.models import APIKeyCredentials
from agentflow.llm.runtime import LlmRuntime
from agentflow.net.policy import HttpPolicy
from tests.support.llm_server import RecordedRequest, Reply, llm_server, openai_text
from tests.support.network import guard_sockets

# -- every test case of every block ----------------------------------------------------------------------

CASES = [
    pytest.param(block, case, id=f"{block.name()}-{index}-{case.description or 'case'}")
    for block in all_blocks()
    for index, case in enumerate(block.test_cases)
]


class MemoryValues:
    """The key-value port in memory, seeded from a case's `mocks["key_values"]` ({scoped key: JSON})."""

    def __init__(self, seeded: dict[str, str]) -> None:
        self.items = dict(seeded)

    def put_value(self, user_id: str, scoped_key: str, value_json: str, writer: str) -> None:
        self.items[scoped_key] = value_json

    def get_value(self, user_id: str, scoped_key: str) -> str | None:
        return self.items.get(scoped_key)


TAGGED = re.compile(r'<json_output id="([0-9a-f]+)">')


def _scripted(reply: Any) -> Callable[[RecordedRequest], Reply]:
    """A case's LLM reply: text, or {"json": value} sent inside the section the request's instructions name."""

    def answer(request: RecordedRequest) -> Reply:
        if isinstance(reply, str):
            return openai_text(reply)
        found = TAGGED.search(" ".join(str(m.get("content")) for m in request.body["messages"]))
        assert found is not None, "the request has no tagged section to answer in"
        return openai_text(f'Here: <json_output id="{found.group(1)}">{json.dumps(reply["json"])}</json_output>')

    return answer


@contextmanager
def _llm_context(block: type[Block], case: BlockTestCase) -> Iterator[dict[str, Any]]:
    """For blocks that call LLMs: a provider server on 127.0.0.1 answering the case's `llm_replies` in order,
    and an OpenAI key whose base URL points at it (none with `no_credentials`)."""
    if not block.uses_llm:
        yield {}
        return
    replies = list(case.mocks.get("llm_replies", []))
    with guard_sockets(), llm_server() as server:
        server.respond_with(lambda request: _scripted(replies.pop(0))(request))
        key = APIKeyCredentials(
            id="c", provider="openai", api_key=SecretStr("sk-case"), base_url=server.openai_base_url
        )
        yield {
            "credentials": {} if case.mocks.get("no_credentials") else {"credentials": key},
            "http": HttpPolicy(allow_hosts=frozenset({"127.0.0.1"})),
            "llm": LlmRuntime(timeout=10.0),
        }
        assert not replies, f"{len(replies)} scripted LLM replies were not asked for"
        assert not server.problems


@pytest.mark.parametrize(("block", "case"), CASES)
def test_block_case(block: type[Block], case: BlockTestCase) -> None:
    values = MemoryValues(dict(case.mocks.get("key_values", {})))
    with _llm_context(block, case) as llm:
        # a fixed clock (2026-05-17 10:00 UTC): no case depends on the day it runs
        context = BlockContext(
            mocks=case.mocks,
            values=values,
            clock=lambda: 1779012000.0,
            deferrals=int(case.mocks.get("deferrals", 0)),
            **llm,
        )
        run = execute_block(block, case.input, context)
    if block.uses_llm and not any(pin == "prompt" for pin, _ in case.output):
        run = dataclasses.replace(run, outputs=[(pin, v) for pin, v in run.outputs if pin != "prompt"])
    if case.error is None:
        assert run.error is None, run.error
        assert run.outputs == case.output
        # Exact types too: 1 == 1.0 == True in Python, but not in the JSON a graph's user sees.
        assert [type(v) for _, v in run.outputs] == [type(v) for _, v in case.output]
    else:
        assert run.error is not None, f"expected failure containing {case.error!r}, got {run.outputs}"
        assert case.error in run.error
        assert run.outputs[:-1] == case.output
        assert run.outputs[-1] == ("error", run.error)


def test_every_block_has_cases() -> None:
    for block in all_blocks():
        assert len(block.test_cases) >= 3, block.name()


# -- the registry against AutoGPT's block ids -------------------------------------------------------------------

C_IN, C_OUT, C_BASIC = BlockCategory.INPUT, BlockCategory.OUTPUT, BlockCategory.BASIC
C_LOGIC, C_TEXT, C_DATA = BlockCategory.LOGIC, BlockCategory.TEXT, BlockCategory.DATA
C_AI = BlockCategory.AI
STD, INP, OUT, NOTE = BlockType.STANDARD, BlockType.INPUT, BlockType.OUTPUT, BlockType.NOTE
AGENT = BlockType.AGENT

# name: (uuid, module, block_type, static_output, categories)
TABLE: dict[str, tuple[str, str, BlockType, bool, set[BlockCategory]]] = {
    "AgentInputBlock": ("c0a8e994-ebf1-4a9c-a4d8-89d09c86741b", "io", INP, True, {C_IN, C_BASIC}),
    "AgentShortTextInputBlock": ("7fcd3bcb-8e1b-4e69-903d-32d3d4a92158", "io", INP, True, {C_IN, C_BASIC}),
    "AgentLongTextInputBlock": ("90a56ffb-7024-4b2b-ab50-e26c5e5ab8ba", "io", INP, True, {C_IN, C_BASIC}),
    "AgentNumberInputBlock": ("96dae2bb-97a2-41c2-bd2f-13a3b5a8ea98", "io", INP, True, {C_IN, C_BASIC}),
    "AgentDropdownInputBlock": ("655d6fdf-a334-421c-b733-520549c07cd1", "io", INP, True, {C_IN, C_BASIC}),
    "AgentToggleInputBlock": ("cbf36ab5-df4a-43b6-8a7f-f7ed8652116e", "io", INP, True, {C_IN, C_BASIC}),
    "AgentOutputBlock": ("363ae599-353e-4804-937e-b2ee3cef3da4", "io", OUT, True, {C_OUT, C_BASIC}),
    "StoreValueBlock": ("1ff065e9-88e8-4358-9d82-8dc91f622ba9", "basic", STD, True, {C_BASIC}),
    "NoteBlock": ("cc10ff7b-7753-4ff2-9af6-9399b1a7eddc", "basic", NOTE, False, {C_BASIC}),
    "ConditionBlock": ("715696a0-e1da-45c8-b209-c2fa9c3b0be6", "branching", STD, False, {C_LOGIC}),
    "IfInputMatchesBlock": ("6dbbc4b3-ca6c-42b6-b508-da52d23e13f2", "branching", STD, False, {C_LOGIC}),
    "MatchTextPatternBlock": ("3060088f-6ed9-4928-9ba7-9c92823a7ccd", "text", STD, False, {C_TEXT}),
    "FillTextTemplateBlock": ("db7d8f02-2f44-4c55-ab7a-eae0941f0c30", "text", STD, False, {C_TEXT}),
    "CombineTextsBlock": ("e30a4d42-7b7d-4e6a-b36e-1f9b8e3b7d85", "text", STD, False, {C_TEXT}),
    "TextSplitBlock": ("d5ea33c8-a575-477a-b42f-2fe3be5055ec", "text", STD, False, {C_TEXT}),
    "StepThroughItemsBlock": ("f66a3543-28d3-4ab5-8945-9b336371e2ce", "iteration", STD, False, {C_LOGIC}),
    "CalculatorBlock": ("b1ab9b19-67a6-406d-abf5-2dba76d00c79", "maths", STD, False, {C_LOGIC}),
    "CountItemsBlock": ("3c9c2f42-b0c3-435f-ba35-05f7a25c772a", "maths", STD, False, {C_LOGIC}),
    "PrintToConsoleBlock": ("f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c", "conversion", STD, False, {C_BASIC}),
    "UniversalTypeConverterBlock": ("95d1b990-ce13-4d88-9737-ba5c2070c97b", "conversion", STD, False, {C_BASIC}),
    "CreateDictionaryBlock": ("b924ddf4-de4f-4b56-9a85-358930dcbc91", "dictionaries", STD, False, {C_DATA}),
    "AddToDictionaryBlock": ("31d1064e-7446-4693-a7d4-65e5ca1180d1", "dictionaries", STD, False, {C_BASIC}),
    "FindInDictionaryBlock": ("0e50422c-6dee-4145-83d6-3a5a392f65de", "dictionaries", STD, False, {C_BASIC}),
    "CreateListBlock": ("a912d5c7-6e00-4542-b2a9-8034136930e4", "lists", STD, False, {C_DATA}),
    "AddToListBlock": ("aeb08fc1-2fc1-4141-bc8e-f758f183a822", "lists", STD, False, {C_BASIC}),
    "GetListItemBlock": ("262ca24c-1025-43cf-a578-534e23234e97", "lists", STD, False, {C_BASIC}),
    "ExtractTextInformationBlock": ("3146e4fe-2cdd-4f29-bd12-0c9d5bb4deb0", "text_extract", STD, False, {C_TEXT}),
    "TextReplaceBlock": ("7e7c87ab-3469-4bcc-9abe-67705091b713", "text_extract", STD, False, {C_TEXT}),
    "GetCurrentTimeBlock": ("a892b8d9-3e4e-4e9c-9c1e-75f8efcf1bfa", "time_blocks", STD, False, {C_TEXT}),
    "GetCurrentDateBlock": ("b29c1b50-5d0e-4d9f-8f9d-1b0e6fcbf0b1", "time_blocks", STD, False, {C_TEXT}),
    "GetCurrentDateAndTimeBlock": ("716a67b3-6760-42e7-86dc-18645c6e00fc", "time_blocks", STD, False, {C_TEXT}),
    "XMLParserBlock": ("286380af-9529-4b55-8be0-1d7c854abdb5", "xml_parser", STD, False, set()),
    "AgentDateInputBlock": ("7e198b09-4994-47db-8b4d-952d98241817", "io_extra", INP, True, {C_IN, C_BASIC}),
    "AgentTimeInputBlock": ("2a1c757e-86cf-4c7e-aacf-060dc382e434", "io_extra", INP, True, {C_IN, C_BASIC}),
    "AgentTableInputBlock": ("5603b273-f41e-4020-af7d-fbc9c6a8d928", "io_extra", INP, True, {C_IN, C_BASIC}),
    "CodeExtractionBlock": ("d3a7d896-3b78-4f44-8b4b-48fbf4f0bcd8", "text_tools", STD, False, {C_TEXT}),
    "WordCharacterCountBlock": ("ab2a782d-22cf-4587-8a70-55b59b3f9f90", "text_tools", STD, False, {C_TEXT}),
    "TextEncoderBlock": ("5185f32e-4b65-4ecf-8fbb-873f003f09d6", "text_tools", STD, False, {C_TEXT}),
    "TextDecoderBlock": ("2570e8fe-8447-43ed-84c7-70d657923231", "text_tools", STD, False, {C_TEXT}),
    "ReadSpreadsheetBlock": ("acf7625e-d2cb-4941-bfeb-2819fc6fc015", "tabular", STD, False, {C_TEXT, C_DATA}),
    "DataSamplingBlock": ("4a448883-71fa-49cf-91cf-70d793bd7d87", "tabular", STD, False, {C_LOGIC}),
    "CountdownTimerBlock": ("d67a9c52-5e4e-11e2-bcfd-0800200c9a71", "countdown", STD, False, {C_TEXT}),
    "RemoveFromDictionaryBlock": ("46afe2ea-c613-43f8-95ff-6692c3ef6876", "dict_ops", STD, False, {C_BASIC}),
    "ReplaceDictionaryValueBlock": ("27e31876-18b6-44f3-ab97-f6226d8b3889", "dict_ops", STD, False, {C_BASIC}),
    "DictionaryIsEmptyBlock": ("a3cf3f64-6bb9-4cc6-9900-608a0b3359b0", "dict_ops", STD, False, {C_BASIC}),
    "FindInListBlock": ("5e2c6d0a-1e37-489f-b1d0-8e1812b23333", "list_ops", STD, False, {C_BASIC}),
    "RemoveFromListBlock": ("d93c5a93-ac7e-41c1-ae5c-ef67e6e9b826", "list_ops", STD, False, {C_BASIC}),
    "ReplaceListItemBlock": ("fbf62922-bea1-4a3d-8bac-23587f810b38", "list_ops", STD, False, {C_BASIC}),
    "ListIsEmptyBlock": ("896ed73b-27d0-41be-813c-c1c1dc856c03", "list_ops", STD, False, {C_BASIC}),
    "ConcatenateListsBlock": ("3cf9298b-5817-4141-9d80-7c2cc5199c8e", "list_ops", STD, False, {C_BASIC}),
    "FlattenListBlock": ("cc45bb0f-d035-4756-96a7-fe3e36254b4d", "list_ops", STD, False, {C_BASIC}),
    "InterleaveListsBlock": ("9f616084-1d9f-4f8e-bc00-5b9d2a75cd75", "list_ops", STD, False, {C_BASIC}),
    "ZipListsBlock": ("0d0e684f-5cb9-4c4b-b8d1-47a0860e0c07", "list_ops", STD, False, {C_BASIC}),
    "ListDifferenceBlock": ("05309873-9d61-447e-96b5-b804e2511829", "list_ops", STD, False, {C_BASIC}),
    "ListIntersectionBlock": ("b6eb08b6-dbe3-411b-b9b4-2508cb311a1f", "list_ops", STD, False, {C_BASIC}),
    "ReverseListOrderBlock": ("422cb708-3109-4277-bfe3-bc2ae5812777", "list_ops", STD, False, {C_BASIC}),
    "HumanInTheLoopBlock": (
        "8b2a7b3c-6e9d-4a5f-8c1b-2e3f4a5b6c7d",
        "human_in_the_loop",
        BlockType.HUMAN_IN_THE_LOOP,
        False,
        {C_BASIC},
    ),
    "AgentExecutorBlock": (
        "e189baac-8c20-45a1-94a7-55177ea42565",
        "agent",
        BlockType.AGENT,
        False,
        {BlockCategory.AGENT},
    ),
    "PersistInformationBlock": ("1d055e55-a2b9-4547-8311-907d05b0304d", "persistence", STD, False, {C_DATA}),
    "RetrieveInformationBlock": ("d8710fc9-6e29-481e-a7d5-165eb16f8471", "persistence", STD, True, {C_DATA}),
    "SendWebRequestBlock": ("6595ae1f-b924-42cb-9a41-551a0611c4b4", "http", STD, False, {C_OUT}),
    "SendAuthenticatedWebRequestBlock": ("fff86bcd-e001-4bad-a7f6-2eae4720c8dc", "http", STD, False, {C_OUT}),
    # BLOCKS-AGENTS.md §0
    "AIStructuredResponseGeneratorBlock": ("ed55ac19-356e-4243-a6cb-bc599e9b716f", "llm", STD, False, {C_AI}),
    "AITextGeneratorBlock": ("1f292d4a-41a4-4977-9684-7c8d560b9f91", "llm", STD, False, {C_AI}),
    "AITextSummarizerBlock": ("a0a69be1-4528-491c-a85a-a4ab6873e3f0", "llm", STD, False, {C_AI, C_TEXT}),
    "AIConversationBlock": ("32a87eab-381e-4dd4-bdb8-4c47151be35a", "llm", STD, False, {C_AI}),
    "AIListGeneratorBlock": ("9c0b0450-d199-458b-a731-072189dd6593", "llm", STD, False, {C_AI, C_TEXT}),
    "OrchestratorBlock": ("3b191d9f-356f-482d-8238-ba04b6d18381", "orchestrator", BlockType.AI, False, {C_AI}),
    # trigger blocks (issue: webhook-triggered agents), AutoGPT's UUIDs
    "GenericWebhookTriggerBlock": (
        "8fa8c167-2002-47ce-aba8-97572fc5d387",
        "triggers",
        BlockType.WEBHOOK,
        False,
        {BlockCategory.INPUT},
    ),
    "GithubPullRequestTriggerBlock": (
        "6c60ec01-8128-419e-988f-96a063ee2fea",
        "triggers",
        BlockType.WEBHOOK,
        False,
        {BlockCategory.INPUT},
    ),
}

_INPUT_PINS = ["name", "value", "title", "description", "advanced", "secret"]

# name: (input pins in order, required inputs, output pins in order)
PINS: dict[str, tuple[list[str], set[str], list[str]]] = {
    "GenericWebhookTriggerBlock": (["payload", "constants"], set(), ["error", "payload", "constants"]),
    "GithubPullRequestTriggerBlock": (
        ["repo", "events", "payload"],
        {"repo"},
        ["error", "payload", "triggered_by_user", "event", "number", "pull_request", "pull_request_url"],
    ),
    "AgentInputBlock": (_INPUT_PINS, {"name"}, ["result"]),
    "AgentShortTextInputBlock": (_INPUT_PINS, {"name"}, ["result"]),
    "AgentLongTextInputBlock": (_INPUT_PINS, {"name"}, ["result"]),
    "AgentNumberInputBlock": (_INPUT_PINS, {"name"}, ["result"]),
    "AgentDropdownInputBlock": ([*_INPUT_PINS, "options"], {"name"}, ["result"]),
    "AgentToggleInputBlock": (_INPUT_PINS, {"name"}, ["result"]),
    "AgentOutputBlock": (
        ["value", "name", "title", "description", "format", "escape_html", "advanced", "secret"],
        {"name"},
        ["output", "name"],
    ),
    "StoreValueBlock": (["input", "data"], {"input"}, ["error", "output"]),
    "NoteBlock": (["text"], {"text"}, ["error", "output"]),
    "ConditionBlock": (
        ["value1", "operator", "value2", "yes_value", "no_value"],
        {"value1", "operator", "value2"},
        ["error", "result", "yes_output", "no_output"],
    ),
    "IfInputMatchesBlock": (
        ["input", "value", "yes_value", "no_value"],
        {"input", "value"},
        ["error", "result", "yes_output", "no_output"],
    ),
    "MatchTextPatternBlock": (
        ["text", "match", "data", "case_sensitive", "dot_all"],
        {"text", "match", "data"},
        ["error", "positive", "negative"],
    ),
    "FillTextTemplateBlock": (["values", "format", "escape_html"], {"values", "format"}, ["error", "output"]),
    "CombineTextsBlock": (["input", "delimiter"], {"input"}, ["error", "output"]),
    "TextSplitBlock": (["text", "delimiter", "strip"], {"text", "delimiter"}, ["error", "texts"]),
    "StepThroughItemsBlock": (["items", "items_object", "items_str"], set(), ["error", "item", "key"]),
    "CalculatorBlock": (["operation", "a", "b", "round_result"], {"operation", "a", "b"}, ["error", "result"]),
    "CountItemsBlock": (["collection"], {"collection"}, ["error", "count"]),
    "PrintToConsoleBlock": (["text"], {"text"}, ["error", "output", "status"]),
    "UniversalTypeConverterBlock": (["value", "type"], {"value", "type"}, ["error", "value"]),
    "CreateDictionaryBlock": (["values"], {"values"}, ["error", "dictionary"]),
    "AddToDictionaryBlock": (["dictionary", "key", "value", "entries"], set(), ["error", "updated_dictionary"]),
    "FindInDictionaryBlock": (["input", "key"], {"input", "key"}, ["error", "output", "missing"]),
    "CreateListBlock": (["values", "max_size", "max_tokens"], {"values"}, ["error", "list"]),
    "AddToListBlock": (["list", "entry", "entries", "position"], set(), ["error", "updated_list"]),
    "GetListItemBlock": (["list", "index"], {"list", "index"}, ["error", "item"]),
    "ExtractTextInformationBlock": (
        ["text", "pattern", "group", "case_sensitive", "dot_all", "find_all"],
        {"text", "pattern"},
        ["error", "positive", "negative", "matched_results", "matched_count"],
    ),
    "TextReplaceBlock": (["text", "old", "new"], {"text", "old", "new"}, ["error", "output"]),
    "GetCurrentTimeBlock": (["trigger", "format_type"], {"trigger"}, ["error", "time"]),
    "GetCurrentDateBlock": (["trigger", "offset", "format_type"], {"trigger"}, ["error", "date"]),
    "GetCurrentDateAndTimeBlock": (["trigger", "format_type"], {"trigger"}, ["error", "date_time"]),
    "XMLParserBlock": (["input_xml"], {"input_xml"}, ["error", "parsed_xml"]),
    "AgentDateInputBlock": (_INPUT_PINS, {"name"}, ["result"]),
    "AgentTimeInputBlock": (_INPUT_PINS, {"name"}, ["result"]),
    "AgentTableInputBlock": ([*_INPUT_PINS, "column_headers"], {"name"}, ["result"]),
    "CodeExtractionBlock": (
        ["text"],
        {"text"},
        [
            "error",
            "html",
            "css",
            "javascript",
            "python",
            "sql",
            "java",
            "cpp",
            "csharp",
            "json_code",
            "bash",
            "php",
            "ruby",
            "yaml",
            "markdown",
            "typescript",
            "xml",
            "remaining_text",
        ],
    ),
    "WordCharacterCountBlock": (["text"], {"text"}, ["error", "word_count", "character_count"]),
    "TextEncoderBlock": (["text"], {"text"}, ["error", "encoded_text"]),
    "TextDecoderBlock": (["text"], {"text"}, ["error", "decoded_text"]),
    "ReadSpreadsheetBlock": (
        [
            "contents",
            "file_input",
            "delimiter",
            "quotechar",
            "escapechar",
            "has_header",
            "skip_rows",
            "strip",
            "skip_columns",
            "sheet_name",
            "produce_singular_result",
        ],
        set(),
        ["error", "row", "rows"],
    ),
    "DataSamplingBlock": (
        [
            "data",
            "sample_size",
            "sampling_method",
            "accumulate",
            "random_seed",
            "stratify_key",
            "weight_key",
            "cluster_key",
        ],
        {"data"},
        ["error", "sampled_data", "sample_indices"],
    ),
    "CountdownTimerBlock": (
        ["input_message", "seconds", "minutes", "hours", "days", "repeat"],
        set(),
        ["error", "output_message"],
    ),
    "RemoveFromDictionaryBlock": (
        ["dictionary", "key", "return_value"],
        {"dictionary", "key"},
        ["error", "updated_dictionary", "removed_value"],
    ),
    "ReplaceDictionaryValueBlock": (
        ["dictionary", "key", "value"],
        {"dictionary", "key", "value"},
        ["error", "updated_dictionary", "old_value"],
    ),
    "DictionaryIsEmptyBlock": (["dictionary"], {"dictionary"}, ["error", "is_empty"]),
    "FindInListBlock": (["list", "value"], {"list", "value"}, ["error", "index", "found", "not_found_value"]),
    "RemoveFromListBlock": (
        ["list", "value", "index", "return_item"],
        {"list"},
        ["error", "updated_list", "removed_item"],
    ),
    "ReplaceListItemBlock": (
        ["list", "index", "value"],
        {"list", "index", "value"},
        ["error", "updated_list", "old_item"],
    ),
    "ListIsEmptyBlock": (["list"], {"list"}, ["error", "is_empty"]),
    "ConcatenateListsBlock": (
        ["lists", "deduplicate", "remove_none"],
        {"lists"},
        ["error", "concatenated_list", "length"],
    ),
    "FlattenListBlock": (
        ["nested_list", "max_depth"],
        {"nested_list"},
        ["error", "flattened_list", "length", "original_depth"],
    ),
    "InterleaveListsBlock": (["lists"], {"lists"}, ["error", "interleaved_list", "length"]),
    "ZipListsBlock": (["lists", "pad_to_longest", "fill_value"], {"lists"}, ["error", "zipped_list", "length"]),
    "ListDifferenceBlock": (
        ["list_a", "list_b", "symmetric"],
        {"list_a", "list_b"},
        ["error", "difference", "length"],
    ),
    "ListIntersectionBlock": (["list_a", "list_b"], {"list_a", "list_b"}, ["error", "intersection", "length"]),
    "ReverseListOrderBlock": (["input_list"], {"input_list"}, ["error", "reversed_list"]),
    "HumanInTheLoopBlock": (
        ["data", "name", "editable", "timeout_seconds", "on_timeout"],
        {"data", "name"},
        ["error", "approved_data", "rejected_data", "review_message"],
    ),
    "AgentExecutorBlock": (
        [
            "user_id",
            "graph_id",
            "graph_version",
            "agent_name",
            "inputs",
            "input_schema",
            "output_schema",
            "nodes_input_masks",
        ],
        {"user_id", "graph_id", "graph_version", "inputs", "input_schema", "output_schema"},
        [],
    ),
    "PersistInformationBlock": (["key", "value", "scope"], {"key", "value"}, ["error", "value"]),
    "RetrieveInformationBlock": (["key", "scope", "default_value"], {"key"}, ["error", "value"]),
    "SendWebRequestBlock": (
        ["url", "method", "headers", "json_format", "body", "files_name", "files"],
        {"url"},
        ["error", "response", "client_error", "server_error"],
    ),
    "SendAuthenticatedWebRequestBlock": (
        ["url", "method", "headers", "json_format", "body", "files_name", "files", "credentials"],
        {"url", "credentials"},
        ["error", "response", "client_error", "server_error"],
    ),
    # BLOCKS-AGENTS.md §2.3-2.7 and §3 (credentials are optional here: the platform key is the default)
    "AIStructuredResponseGeneratorBlock": (
        [
            "prompt",
            "expected_format",
            "list_result",
            "model",
            "force_json_output",
            "credentials",
            "sys_prompt",
            "conversation_history",
            "retry",
            "prompt_values",
            "max_tokens",
            "compress_prompt_to_fit",
            "ollama_host",
        ],
        {"prompt", "expected_format"},
        ["error", "response", "prompt"],
    ),
    "AITextGeneratorBlock": (
        ["prompt", "model", "credentials", "sys_prompt", "retry", "prompt_values", "ollama_host", "max_tokens"],
        {"prompt"},
        ["error", "response", "prompt"],
    ),
    "AITextSummarizerBlock": (
        ["text", "model", "focus", "style", "credentials", "max_tokens", "chunk_overlap", "ollama_host"],
        {"text"},
        ["error", "summary", "prompt"],
    ),
    "AIConversationBlock": (
        ["prompt", "messages", "model", "credentials", "max_tokens", "ollama_host"],
        {"messages"},
        ["error", "response", "prompt"],
    ),
    "AIListGeneratorBlock": (
        [
            "focus",
            "source_data",
            "model",
            "credentials",
            "max_retries",
            "force_json_output",
            "max_tokens",
            "ollama_host",
        ],
        set(),
        ["error", "generated_list", "list_item", "prompt"],
    ),
    "OrchestratorBlock": (
        [
            "prompt",
            "model",
            "credentials",
            "multiple_tool_calls",
            "sys_prompt",
            "conversation_history",
            "last_tool_output",
            "retry",
            "prompt_values",
            "max_tokens",
            "ollama_host",
            "agent_mode_max_iterations",
            "execution_mode",
            "conversation_compaction",
        ],
        {"prompt"},
        ["error", "tools", "finished", "conversations"],
    ),
}


def test_registry_matches_blocks_md() -> None:
    assert {block.name() for block in all_blocks()} == set(TABLE)
    assert len(BLOCKS) == len(TABLE)
    for name, (uuid, module, block_type, static_output, categories) in TABLE.items():
        block = get_block(name)
        assert block is not None, name
        assert block.id == uuid
        assert BLOCKS[uuid] is block
        assert get_block(uuid) is block
        assert get_block(uuid.upper()) is block
        assert block.__module__ == f"agentflow.blocks.{module}"
        assert block.block_type is block_type, name
        assert block.static_output is static_output, name
        assert set(block.categories) == categories, name


def test_get_block_unknown() -> None:
    assert get_block("NoSuchBlock") is None
    assert get_block("00000000-0000-0000-0000-000000000000") is None


@pytest.mark.parametrize("name", sorted(PINS))
def test_pins_match_blocks_md(name: str) -> None:
    inputs, required, outputs = PINS[name]
    block = get_block(name)
    assert block is not None
    assert list(block.Input.model_fields) == inputs
    assert block.required_inputs() == required
    assert list(block.Output.model_fields) == outputs


def test_standard_blocks_have_an_error_pin_and_io_blocks_do_not() -> None:
    for block in all_blocks():
        if block.block_type in (
            BlockType.STANDARD,
            BlockType.NOTE,
            BlockType.WEBHOOK,
            BlockType.AI,
            BlockType.HUMAN_IN_THE_LOOP,
        ):
            assert block.has_error_pin(), block.name()
            assert block.Output.model_fields["error"].default == ""
        else:
            assert not block.has_error_pin(), block.name()


def test_defaults_match_blocks_md() -> None:
    def default(block_name: str, pin: str) -> Any:
        block = get_block(block_name)
        assert block is not None
        return block.Input.model_fields[pin].get_default(call_default_factory=True)

    assert default("AgentToggleInputBlock", "value") is False
    assert default("AgentDropdownInputBlock", "options") == []
    assert default("AgentOutputBlock", "format") == ""
    assert default("AgentOutputBlock", "escape_html") is False
    assert default("MatchTextPatternBlock", "case_sensitive") is True
    assert default("MatchTextPatternBlock", "dot_all") is True
    assert default("CombineTextsBlock", "delimiter") == ""
    assert default("TextSplitBlock", "strip") is True
    assert default("StepThroughItemsBlock", "items") == []
    assert default("StepThroughItemsBlock", "items_object") == {}
    assert default("StepThroughItemsBlock", "items_str") == ""
    assert default("CalculatorBlock", "round_result") is False


def test_input_variants_json_schema() -> None:
    short = get_block("AgentShortTextInputBlock")
    number = get_block("AgentNumberInputBlock")
    assert short is not None and number is not None
    assert short.input_schema()["properties"]["value"]["anyOf"] == [
        {"format": "short-text", "type": "string"},
        {"type": "null"},
    ]
    assert number.input_schema()["properties"]["value"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]


def test_block_info_shape() -> None:
    block = get_block("CalculatorBlock")
    assert block is not None
    info = block.info()
    assert info["id"] == "b1ab9b19-67a6-406d-abf5-2dba76d00c79"
    assert info["block_type"] == "Standard"
    assert info["categories"] == ["LOGIC"]
    assert set(info["input_schema"]["required"]) == {"operation", "a", "b"}


# -- engine rules (README, "Built-in blocks") with small test blocks ---------------------------------------------------


class Point(BaseModel):
    x: int
    y: int


class Echo(Block):
    """Yields whatever `pairs` says, then optionally raises."""

    id = "test-echo"

    class Input(BlockSchema):
        pairs: list[Any] = Field(default_factory=list)
        raise_message: str | None = None

    class Output(BlockSchemaOutput):
        out: Any = None
        number: float = 0.0
        texts: list[str] = Field(default_factory=list)

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield from ((pin, value) for pin, value in input_data.pairs)
        if input_data.raise_message is not None:
            raise BlockError(input_data.raise_message)


class RawYield(Block):
    """Yields Python values that are not JSON, to test encoding."""

    id = "test-raw"

    class Input(BlockSchema):
        kind: str

    class Output(BlockSchemaOutput):
        out: Any = None

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        values: dict[str, Any] = {
            "tuple": (1, (2, 3)),
            "set": {7},
            "date": dt.date(2026, 5, 17),
            "datetime": dt.datetime(2026, 5, 17, 10, 0, tzinfo=dt.UTC),
            "time": dt.time(14, 3, 22),
            "model": Point(x=1, y=2),
            "int_keys": {0: "a", 1: "b"},
            "nan": float("nan"),
            "inf": [1.0, {"k": math.inf}],
            "object": object(),
            "category": BlockCategory.LOGIC,
        }
        yield "out", values[input_data.kind]


class LooseInput(Block):
    """An Input block: yields unknown pins and unchecked values without failing."""

    id = "test-loose"
    block_type = BlockType.INPUT

    class Input(BlockSchema):
        name: str

    class Output(BlockSchema):
        result: int = 0

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "result", "not an int"
        yield "surprise", input_data.name


class Crashes(Block):
    id = "test-crash"

    class Input(BlockSchema):
        pass

    class Output(BlockSchemaOutput):
        out: int = 0

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "out", 1
        raise KeyError("boom")


CTX = BlockContext()


def run(block: type[Block], data: dict[str, Any]) -> BlockRun:
    return execute_block(block, data, CTX)


def test_yield_order_is_kept() -> None:
    result = run(Echo, {"pairs": [["out", 1], ["number", 2.5], ["out", "x"]]})
    assert result == BlockRun(outputs=[("out", 1), ("number", 2.5), ("out", "x")], error=None)
    assert result.ok


def test_yielded_error_fails_and_keeps_earlier_outputs() -> None:
    result = run(Echo, {"pairs": [["out", 1], ["error", "bad thing"], ["out", 2]]})
    assert result.error == "bad thing"
    assert result.outputs == [("out", 1), ("error", "bad thing")]
    assert not result.ok


def test_raised_block_error_message_has_no_prefix() -> None:
    result = run(Echo, {"pairs": [["out", 1]], "raise_message": "it broke"})
    assert result == BlockRun(outputs=[("out", 1), ("error", "it broke")], error="it broke")


def test_any_exception_fails_with_its_text() -> None:
    result = run(Crashes, {})
    assert result.outputs == [("out", 1), ("error", "'boom'")]
    assert result.error == "'boom'"


def test_unknown_output_pin_fails_a_standard_block() -> None:
    result = run(Echo, {"pairs": [["out", 1], ["nope", 2]]})
    assert result.error is not None and "unknown output 'nope'" in result.error
    assert result.outputs[0] == ("out", 1)


def test_output_type_mismatch_fails_a_standard_block_naming_the_pin() -> None:
    result = run(Echo, {"pairs": [["number", "abc"]]})
    assert result.error is not None and "output 'number'" in result.error
    result = run(Echo, {"pairs": [["texts", [1, 2]]]})
    assert result.error is not None and "output 'texts'" in result.error


def test_output_values_are_validated_leniently_like_json_schema() -> None:
    assert run(Echo, {"pairs": [["number", 3]]}).outputs == [("number", 3)]


def test_non_standard_blocks_are_not_checked() -> None:
    result = run(LooseInput, {"name": "n"})
    assert result == BlockRun(outputs=[("result", "not an int"), ("surprise", "n")], error=None)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("tuple", [1, [2, 3]]),
        ("set", [7]),
        ("date", "2026-05-17"),
        ("datetime", "2026-05-17T10:00:00+00:00"),
        ("time", "14:03:22"),
        ("model", {"x": 1, "y": 2}),
        ("int_keys", {"0": "a", "1": "b"}),
        ("category", "LOGIC"),
    ],
)
def test_outputs_are_json_encoded(kind: str, expected: Any) -> None:
    result = run(RawYield, {"kind": kind})
    assert result.error is None
    assert result.outputs == [("out", expected)]
    assert type(result.outputs[0][1]) is type(expected)


@pytest.mark.parametrize(("kind", "detail"), [("nan", "nan"), ("inf", "inf"), ("object", "object")])
def test_values_json_cannot_hold_fail_naming_the_pin(kind: str, detail: str) -> None:
    result = run(RawYield, {"kind": kind})
    assert result.error is not None
    assert "output 'out'" in result.error
    assert detail in result.error
    assert result.outputs == [("error", result.error)]


def test_build_input_reports_every_missing_field_at_once() -> None:
    block = get_block("ConditionBlock")
    assert block is not None
    with pytest.raises(BlockInputError) as info:
        build_input(block, {"operator": "=="})
    assert info.value.problems == ["missing required input 'value1'", "missing required input 'value2'"]


def test_build_input_null_means_not_given() -> None:
    block = get_block("AgentToggleInputBlock")
    assert block is not None
    built = build_input(block, {"name": "t", "value": None, "title": None})
    assert built.model_dump()["value"] is False
    assert built.model_dump()["title"] is None


def test_build_input_coerces_then_validates() -> None:
    block = get_block("CalculatorBlock")
    assert block is not None
    built = build_input(block, {"operation": "Add", "a": "2", "b": [1, 2, 3], "unknown_pin": 1})
    assert built.model_dump()["a"] == 2.0
    assert built.model_dump()["b"] == 3.0  # a list becomes its length (§1.7)
    with pytest.raises(BlockInputError) as info:
        build_input(block, {"operation": "Root", "a": 1, "b": 2})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("input 'operation':")


def test_build_input_merges_dynamic_pins() -> None:
    block = get_block("FillTextTemplateBlock")
    assert block is not None
    built = build_input(block, {"values": {"a": 1}, "values_#_b": 2, "values_#_a": 3, "format": "x"})
    assert built.model_dump()["values"] == {"a": 3, "b": 2}


def test_build_input_bad_list_index_names_the_pin() -> None:
    block = get_block("CombineTextsBlock")
    assert block is not None
    with pytest.raises(BlockInputError) as info:
        build_input(block, {"input_$_x": "a"})
    assert info.value.problems == ["input 'input_$_x': index must be an integer"]
    result = execute_block(block, {"input_$_x": "a"}, CTX)
    assert result.error == "invalid input for CombineTextsBlock: input 'input_$_x': index must be an integer"
    with pytest.raises(BlockInputError) as info:
        build_input(block, {"input_$_-1": "a"})
    assert info.value.problems[0].startswith("input 'input_$_-1': list index out of range")


def test_input_error_fails_the_run_with_a_clear_message() -> None:
    block = get_block("CalculatorBlock")
    assert block is not None
    result = execute_block(block, {"a": 1}, CTX)
    assert result.error == (
        "invalid input for CalculatorBlock: missing required input 'operation'; missing required input 'b'"
    )
    assert result.outputs == [("error", result.error)]


def test_execute_block_does_not_mutate_its_data() -> None:
    block = get_block("FillTextTemplateBlock")
    assert block is not None
    values = {"a": 1}
    data = {"values": values, "values_#_b": 2, "format": "{{ a }}{{ b }}"}
    assert execute_block(block, data, CTX).outputs == [("output", "12")]
    assert values == {"a": 1}
    assert data == {"values": {"a": 1}, "values_#_b": 2, "format": "{{ a }}{{ b }}"}


def test_non_string_error_message_is_stringified() -> None:
    result = run(Echo, {"pairs": [["error", 42]]})
    assert result.error == "42"
