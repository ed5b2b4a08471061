"""AgentExecutorBlock (README, "Sub-graphs"): a node that runs another graph of the user as a sub-agent. Its pins
are the called graph's: links feed the names of `input_schema.properties` and leave from those of
`output_schema.properties`. The engine runs its nodes itself (agentflow.executor.subagents): it starts the child
run and waits for it with no worker waiting; `run` is never called for a node of a graph."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field

from agentflow.blocks.sdk import Block, BlockCategory, BlockContext, BlockError, BlockSchema, BlockTestCase, BlockType

__all__ = ["AGENT_EXECUTOR_ID", "AgentExecutorBlock", "schema_names"]

AGENT_EXECUTOR_ID = "e189baac-8c20-45a1-94a7-55177ea42565"
NOT_YET = "AgentExecutorBlock runs only as a node of a graph: the engine starts its sub-agent run"


def schema_names(schema: Any) -> frozenset[str]:
    """The property names of a JSON schema (an input or output schema of a graph)."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    return frozenset(str(name) for name in properties) if isinstance(properties, Mapping) else frozenset()


class AgentExecutorBlock(Block):
    id = AGENT_EXECUTOR_ID
    description = "Runs another agent (graph) of yours with the given inputs and yields its outputs."
    categories = frozenset({BlockCategory.AGENT})
    block_type = BlockType.AGENT

    class Input(BlockSchema):
        user_id: str = Field(description="The user the sub-agent runs as (set to the running user on import).")
        graph_id: str = Field(description="The graph to run.")
        graph_version: int = Field(description="Its version.")
        agent_name: str | None = Field(default=None, description="Display only.")
        inputs: dict[str, Any] = Field(description="Default inputs of the sub-graph.")
        input_schema: dict[str, Any] = Field(description="The sub-graph's input schema.")
        output_schema: dict[str, Any] = Field(description="The sub-graph's output schema.")
        nodes_input_masks: dict[str, Any] | None = Field(default=None, description="Hidden.")

    class Output(BlockSchema):
        pass  # dynamic: the called graph's outputs (node_output_names)

    @classmethod
    def node_input_names(cls, input_default: Mapping[str, Any]) -> frozenset[str]:
        return cls.input_names() | schema_names(input_default.get("input_schema"))

    @classmethod
    def node_output_names(cls, input_default: Mapping[str, Any]) -> frozenset[str]:
        return schema_names(input_default.get("output_schema")) | {"error"}  # a failed child run's error

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        raise BlockError(NOT_YET)
        yield  # pragma: no cover - a generator, like every block

    test_cases = (
        BlockTestCase(
            {
                "user_id": "u",
                "graph_id": "g",
                "graph_version": 1,
                "inputs": {},
                "input_schema": {},
                "output_schema": {},
            },
            [],
            "outside a graph: the engine runs its nodes",
            error="runs only as a node of a graph",
        ),
        BlockTestCase({"graph_id": "g"}, [], "user_id is required", error="missing required input 'user_id'"),
        BlockTestCase(
            {"user_id": "u", "graph_id": "g", "graph_version": 1, "inputs": {}},
            [],
            "the schemas are required",
            error="missing required input 'input_schema'",
        ),
    )
