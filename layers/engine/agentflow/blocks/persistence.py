"""PersistInformationBlock and RetrieveInformationBlock (README, "Built-in blocks"): a user's key-value items,
shared by every run of one graph (`within_agent`) or by all the user's graphs (`across_agents`), as AutoGPT scopes
them. Unlike AutoGPT, falsy values (`0`, `false`, `""`, `[]`, `{}`) are stored and read back faithfully (README,
"Compatibility with AutoGPT")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
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
    KeyValuePort,
)

__all__ = ["PersistInformationBlock", "RetrieveInformationBlock", "StorageScope"]

MAX_KEY_LENGTH = 500  # the scoped key is part of a DynamoDB sort key (at most 1,024 bytes)


class StorageScope(StrEnum):
    WITHIN_AGENT = "within_agent"
    ACROSS_AGENTS = "across_agents"


def scoped_key(context: BlockContext, key: str, scope: StorageScope) -> str:
    """AutoGPT's keys: the graph id (not its version) for `within_agent`, the user's whole space otherwise."""
    if not key:
        raise BlockError("key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise BlockError(f"key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
    if scope is StorageScope.ACROSS_AGENTS:
        return f"global#{key}"
    return f"agent#{context.graph_id}#{key}"


def _values(context: BlockContext) -> KeyValuePort:
    if context.values is None:
        raise BlockError("this block needs the key-value store, which is not available here")
    return context.values


class PersistInformationBlock(Block):
    id = "1d055e55-a2b9-4547-8311-907d05b0304d"
    description = "Stores a value under a key, for later runs of this agent (or of all your agents) to read."
    categories = frozenset({BlockCategory.DATA})

    class Input(BlockSchema):
        key: str = Field(description="Key to store the information under")
        value: Any = Field(description="Value to store")
        scope: StorageScope = Field(
            default=StorageScope.WITHIN_AGENT,
            description="Scope of persistence: within_agent (shared across all runs of this agent) or "
            "across_agents (shared across all agents of this user)",
        )

    class Output(BlockSchemaOutput):
        value: Any = Field(description="Value that was stored")

    test_cases = (
        BlockTestCase({"key": "k", "value": {"a": 1}}, [("value", {"a": 1})], "stores and yields it"),
        BlockTestCase({"key": "k", "value": 0, "scope": "across_agents"}, [("value", 0)], "falsy kept"),
        BlockTestCase({"key": "k", "value": ""}, [("value", "")], "empty string kept"),
        BlockTestCase({"key": "", "value": 1}, [], "empty key", error="key must not be empty"),
        BlockTestCase({"key": "k", "value": 1, "scope": "everywhere"}, [], "bad scope", error="'scope'"),
    )

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        store = _values(context)
        key = scoped_key(context, input_data.key, input_data.scope)
        store.put_value(context.user_id, key, json.dumps(input_data.value), context.node_exec_id)
        stored = store.get_value(context.user_id, key)  # AutoGPT yields the value as read back
        yield "value", None if stored is None else json.loads(stored)


class RetrieveInformationBlock(Block):
    id = "d8710fc9-6e29-481e-a7d5-165eb16f8471"
    description = "Reads the value stored under a key, or the default when none is stored."
    categories = frozenset({BlockCategory.DATA})
    static_output = True

    class Input(BlockSchema):
        key: str = Field(description="Key to retrieve the information for")
        scope: StorageScope = Field(
            default=StorageScope.WITHIN_AGENT,
            description="Scope of persistence: within_agent (shared across all runs of this agent) or "
            "across_agents (shared across all agents of this user)",
        )
        default_value: Any = Field(default=None, description="Default value to return if the key is not found")

    class Output(BlockSchemaOutput):
        value: Any = Field(description="Retrieved value, or the default value")

    test_cases = (
        BlockTestCase({"key": "k"}, [("value", 7)], "stored", mocks={"key_values": {"agent##k": "7"}}),
        BlockTestCase({"key": "k", "default_value": "d"}, [("value", "d")], "missing: the default"),
        BlockTestCase({"key": "k"}, [("value", None)], "missing, no default: None"),
        BlockTestCase(
            {"key": "k", "default_value": "d"},
            [("value", False)],
            "falsy kept",
            mocks={"key_values": {"agent##k": "false"}},
        ),
        BlockTestCase(
            {"key": "k", "scope": "across_agents"},
            [("value", [1])],
            "global",
            mocks={"key_values": {"global#k": "[1]"}},
        ),
    )

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        stored = _values(context).get_value(context.user_id, scoped_key(context, input_data.key, input_data.scope))
        yield "value", input_data.default_value if stored is None else json.loads(stored)
