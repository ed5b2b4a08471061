"""AutoGPT's OrchestratorBlock, formerly SmartDecisionMakerBlock (BLOCKS-AGENTS.md §3; README, "Tool calling"):
an LLM that calls tools. Its tools are the nodes its tool pins link to. In the usual (traditional) mode each model
turn is one node execution: the tool calls' arguments leave on the tool pins, the tools run as nodes of the graph,
and their results come back through the links into `last_tool_output`, with the conversation on
`conversation_history`; a reply without tool calls ends the loop on `finished`. In agent mode
(`agent_mode_max_iterations` not 0) the block runs the tool blocks itself, within its one node execution, for at
most that many model turns."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentflow.blocks.llm import AICredentialsField, LlmBlock, ModelField
from agentflow.blocks.sdk import BlockContext, BlockError, BlockSchema, BlockSchemaOutput, BlockTestCase, BlockType
from agentflow.credentials.models import CredentialsMetaInput
from agentflow.llm.tools import TOOL_PIN_PREFIX, pending_calls, tool_pin

LOOP_PINS = frozenset({"conversation_history", "last_tool_output"})
DEFAULT_SYS_PROMPT = (
    "Think step by step about how to reach the objective. Always answer with one of the function calls listed, "
    "giving every required argument in the shape its JSON schema asks for. Once the objective is reached, reply "
    "without a function call: a final message that carries the result."
)
UNDECLARED_PINS = frozenset({"tool_functions", "tool_calls"})


class OrchestratorBlock(LlmBlock):
    id = "3b191d9f-356f-482d-8238-ba04b6d18381"
    description = "Uses AI to intelligently decide what tool to use."
    block_type: ClassVar[BlockType] = BlockType.AI
    former_names = ("SmartDecisionMakerBlock",)

    class Input(BlockSchema):
        prompt: str = Field(description="The prompt to send to the language model.")
        model: str = ModelField()
        credentials: CredentialsMetaInput | None = AICredentialsField()
        multiple_tool_calls: bool = Field(default=False, description="Whether to allow several tool calls at once.")
        sys_prompt: str = Field(default=DEFAULT_SYS_PROMPT, description="The system prompt.")
        conversation_history: list[dict[str, Any]] | None = Field(default_factory=list)
        last_tool_output: Any = Field(default=None, description="The output of the last tool that was called.")
        retry: int = Field(default=3, description="Attempts to get valid tool calls.")
        prompt_values: dict[str, Any] = Field(default_factory=dict, description="Values for {{key}} in the prompt.")
        max_tokens: int | None = Field(default=None, description="The most tokens to generate.")
        ollama_host: str = Field(default="localhost:11434", description="Ollama host for local models.")
        agent_mode_max_iterations: int = Field(
            default=0, description="0: one model turn per node execution; -1: run tools until finished; n: at most n"
        )
        execution_mode: Literal["built_in", "extended_thinking"] = Field(default="built_in")
        conversation_compaction: bool = Field(default=True, description="Truncate a prompt too long for the model.")

    class Output(BlockSchemaOutput):
        tools: Any = Field(description="The tools that are available to use.")
        finished: str = Field(description="The model's final message, once it calls no more tools.")
        conversations: list[Any] = Field(description="The conversation so far.")

    # -- pins

    @classmethod
    def accepts_output_pin(cls, pin: str, input_default: Mapping[str, Any]) -> bool:
        return pin in cls.output_names() or pin in UNDECLARED_PINS or pin.startswith(TOOL_PIN_PREFIX)

    @classmethod
    def link_source_name(cls, source_name: str, sink_id: str, sink_name: str) -> str:
        # the current UI's `tools` links carry their sink in the pin, so each call's arguments reach only their tool
        return tool_pin(sink_id, sink_name) if source_name == "tools" else source_name

    @classmethod
    def waits_for(cls, missing: frozenset[str], values: Mapping[str, Any]) -> frozenset[str]:
        """§3.3: the first turn needs neither loop pin; a turn with a call pending waits for its result; a result
        waits for the conversation it answers."""
        if missing - LOOP_PINS:
            return missing
        has_history, has_output = "conversation_history" not in missing, "last_tool_output" not in missing
        if has_history and not has_output:
            return (
                frozenset({"last_tool_output"}) if pending_calls(values["conversation_history"] or []) else frozenset()
            )
        if has_output and not has_history:
            return frozenset({"conversation_history"})
        return frozenset()

    # -- run

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        from agentflow.blocks.orchestrator_loop import run_orchestrator  # lazy: the SDK adapters

        if input_data.execution_mode != "built_in":
            raise BlockError("execution_mode 'extended_thinking' (the Claude Agent SDK) is not supported: use built_in")
        if context.graph is None:
            raise BlockError(
                "the Orchestrator runs only inside a graph (its tools are the nodes its tool pins link to)"
            )
        yield from run_orchestrator(input_data, dataclasses.replace(context))

    # Its real cases need a graph (its tools are its links): tests/unit/test_orchestrator.py.
    test_cases = (
        BlockTestCase({"prompt": "p"}, [], "outside a graph", error="runs only inside a graph"),
        BlockTestCase(
            {"prompt": "p", "execution_mode": "extended_thinking"}, [], "no Claude Agent SDK", error="not supported"
        ),
        BlockTestCase({}, [], "a prompt is required", error="missing required input 'prompt'"),
    )
