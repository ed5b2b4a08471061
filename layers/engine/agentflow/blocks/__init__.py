"""Blocks: the SDK, the engine rules every block follows, and the built-in blocks."""

from agentflow.blocks.execution import BlockInputError, BlockRun, build_input, execute_block
from agentflow.blocks.registry import BLOCKS, all_blocks, get_block
from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockError,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
    BlockType,
)

__all__ = [
    "BLOCKS",
    "Block",
    "BlockCategory",
    "BlockContext",
    "BlockError",
    "BlockInputError",
    "BlockRun",
    "BlockSchema",
    "BlockSchemaOutput",
    "BlockTestCase",
    "BlockType",
    "all_blocks",
    "build_input",
    "execute_block",
    "get_block",
]
