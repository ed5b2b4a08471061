"""Every built-in block, by UUID (README, "Built-in blocks"). A graph's `block_id` may be the UUID or the name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from agentflow.blocks.agent import AgentExecutorBlock
from agentflow.blocks.basic import NoteBlock, StoreValueBlock
from agentflow.blocks.branching import ConditionBlock, IfInputMatchesBlock
from agentflow.blocks.conversion import PrintToConsoleBlock, UniversalTypeConverterBlock
from agentflow.blocks.countdown import CountdownTimerBlock
from agentflow.blocks.dict_ops import DictionaryIsEmptyBlock, RemoveFromDictionaryBlock, ReplaceDictionaryValueBlock
from agentflow.blocks.dictionaries import AddToDictionaryBlock, CreateDictionaryBlock, FindInDictionaryBlock
from agentflow.blocks.http import SendAuthenticatedWebRequestBlock, SendWebRequestBlock
from agentflow.blocks.human_in_the_loop import HumanInTheLoopBlock
from agentflow.blocks.io import (
    AgentDropdownInputBlock,
    AgentInputBlock,
    AgentLongTextInputBlock,
    AgentNumberInputBlock,
    AgentOutputBlock,
    AgentShortTextInputBlock,
    AgentToggleInputBlock,
)
from agentflow.blocks.io_extra import AgentDateInputBlock, AgentTableInputBlock, AgentTimeInputBlock
from agentflow.blocks.iteration import StepThroughItemsBlock
from agentflow.blocks.list_ops import (
    ConcatenateListsBlock,
    FindInListBlock,
    FlattenListBlock,
    InterleaveListsBlock,
    ListDifferenceBlock,
    ListIntersectionBlock,
    ListIsEmptyBlock,
    RemoveFromListBlock,
    ReplaceListItemBlock,
    ReverseListOrderBlock,
    ZipListsBlock,
)
from agentflow.blocks.lists import AddToListBlock, CreateListBlock, GetListItemBlock
from agentflow.blocks.llm import (
    AIConversationBlock,
    AIListGeneratorBlock,
    AIStructuredResponseGeneratorBlock,
    AITextGeneratorBlock,
    AITextSummarizerBlock,
)
from agentflow.blocks.maths import CalculatorBlock, CountItemsBlock
from agentflow.blocks.orchestrator import OrchestratorBlock
from agentflow.blocks.persistence import PersistInformationBlock, RetrieveInformationBlock
from agentflow.blocks.sdk import Block
from agentflow.blocks.tabular import DataSamplingBlock, ReadSpreadsheetBlock
from agentflow.blocks.text import CombineTextsBlock, FillTextTemplateBlock, MatchTextPatternBlock, TextSplitBlock
from agentflow.blocks.text_extract import ExtractTextInformationBlock, TextReplaceBlock
from agentflow.blocks.text_tools import CodeExtractionBlock, TextDecoderBlock, TextEncoderBlock, WordCharacterCountBlock
from agentflow.blocks.time_blocks import GetCurrentDateAndTimeBlock, GetCurrentDateBlock, GetCurrentTimeBlock
from agentflow.blocks.triggers import GenericWebhookTriggerBlock, GithubPullRequestTriggerBlock
from agentflow.blocks.xml_parser import XMLParserBlock
from agentflow.errors import ConfigurationError

__all__ = ["BLOCKS", "all_blocks", "get_block"]

_BUILT_IN: tuple[type[Block], ...] = (
    GenericWebhookTriggerBlock,
    GithubPullRequestTriggerBlock,
    AgentInputBlock,
    AgentShortTextInputBlock,
    AgentLongTextInputBlock,
    AgentNumberInputBlock,
    AgentDropdownInputBlock,
    AgentToggleInputBlock,
    AgentDateInputBlock,
    AgentTimeInputBlock,
    AgentTableInputBlock,
    AgentOutputBlock,
    StoreValueBlock,
    NoteBlock,
    PrintToConsoleBlock,
    UniversalTypeConverterBlock,
    ConditionBlock,
    IfInputMatchesBlock,
    MatchTextPatternBlock,
    FillTextTemplateBlock,
    CombineTextsBlock,
    TextSplitBlock,
    ExtractTextInformationBlock,
    TextReplaceBlock,
    CodeExtractionBlock,
    WordCharacterCountBlock,
    TextEncoderBlock,
    TextDecoderBlock,
    ReadSpreadsheetBlock,
    DataSamplingBlock,
    CountdownTimerBlock,
    CreateDictionaryBlock,
    AddToDictionaryBlock,
    FindInDictionaryBlock,
    CreateListBlock,
    AddToListBlock,
    GetListItemBlock,
    RemoveFromDictionaryBlock,
    ReplaceDictionaryValueBlock,
    DictionaryIsEmptyBlock,
    FindInListBlock,
    RemoveFromListBlock,
    ReplaceListItemBlock,
    ListIsEmptyBlock,
    ConcatenateListsBlock,
    FlattenListBlock,
    InterleaveListsBlock,
    ZipListsBlock,
    ListDifferenceBlock,
    ListIntersectionBlock,
    ReverseListOrderBlock,
    StepThroughItemsBlock,
    CalculatorBlock,
    CountItemsBlock,
    GetCurrentTimeBlock,
    GetCurrentDateBlock,
    GetCurrentDateAndTimeBlock,
    XMLParserBlock,
    PersistInformationBlock,
    RetrieveInformationBlock,
    SendWebRequestBlock,
    SendAuthenticatedWebRequestBlock,
    AgentExecutorBlock,
    HumanInTheLoopBlock,
    AITextGeneratorBlock,
    AIStructuredResponseGeneratorBlock,
    AITextSummarizerBlock,
    AIConversationBlock,
    AIListGeneratorBlock,
    OrchestratorBlock,
)


def _index(blocks: tuple[type[Block], ...]) -> dict[str, type[Block]]:
    by_id: dict[str, type[Block]] = {}
    names: set[str] = set()
    for block in blocks:
        # A duplicate would silently shadow a block in saved graphs: refuse it at import time.
        if block.id in by_id or block.name() in names:
            raise ConfigurationError(f"duplicate block id or name: {block.name()} ({block.id})")
        by_id[block.id] = block
        names.add(block.name())
    return by_id


BLOCKS: Mapping[str, type[Block]] = MappingProxyType(_index(_BUILT_IN))
_BY_NAME: Mapping[str, type[Block]] = MappingProxyType(
    {name: block for block in _BUILT_IN for name in (*block.former_names, block.name())}
)


def get_block(id_or_name: str) -> type[Block] | None:
    """The block with this UUID (case-insensitive) or class name, or None."""
    return BLOCKS.get(id_or_name) or BLOCKS.get(id_or_name.lower()) or _BY_NAME.get(id_or_name)


def all_blocks() -> list[type[Block]]:
    """Every built-in block, in a stable order."""
    return list(_BUILT_IN)
