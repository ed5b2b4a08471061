"""The block SDK: what a block is, how it declares its pins, and how it carries its own test cases.

A block is a class with a stable UUID, pydantic input and output models, and a `run` generator that yields
`(output name, value)` pairs in order. Engine rules that apply to every block (input building, coercion,
dynamic pins, output encoding) live in `agentflow.blocks.execution`, not in the blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from agentflow.clock import Clock, system_clock
from agentflow.errors import AgentflowError, RetryableError
from agentflow.net.policy import HttpPolicy

__all__ = ["Block", "BlockContext", "BlockError", "BlockSchema", "BlockTestCase", "BlockType", "RetryableError"]


class BlockType(StrEnum):
    STANDARD = "Standard"
    INPUT = "Input"
    OUTPUT = "Output"
    NOTE = "Note"
    WEBHOOK = "Webhook"
    AGENT = "Agent"  # AgentExecutorBlock: its pins are the called graph's, so its outputs are not checked
    AI = "AI"  # OrchestratorBlock: it yields undeclared pins (one per tool parameter), so outputs are not checked
    HUMAN_IN_THE_LOOP = "Human In The Loop"  # the engine records a review and waits for its decision


class BlockCategory(StrEnum):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    BASIC = "BASIC"
    LOGIC = "LOGIC"
    TEXT = "TEXT"
    DATA = "DATA"
    AI = "AI"
    AGENT = "AGENT"


class BlockSchema(BaseModel):
    """Base of every input and output model. Unknown keys (e.g. flattened dynamic pins) are ignored."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)


class BlockSchemaOutput(BlockSchema):
    """Output base of Standard blocks: every such block has the implicit `error` pin."""

    error: str = ""


class BlockError(AgentflowError):
    """Raised by a block to fail its node with a clear message (it becomes the `error` output)."""


class KeyValuePort(Protocol):
    """The user's key-value items, as the persistence blocks see them (the store provides it)."""

    def put_value(self, user_id: str, scoped_key: str, value_json: str, writer: str) -> None: ...

    def get_value(self, user_id: str, scoped_key: str) -> str | None: ...


@dataclass(frozen=True)
class BlockContext:
    """What a block may know about where it runs. Nothing here depends on Lambda or the local stack."""

    user_id: str = "local"
    graph_id: str = ""
    graph_version: int = 1
    execution_id: str = ""
    node_id: str = ""
    node_exec_id: str = ""
    mocks: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1  # this run's attempt number (1 for the first; deferrals do not count)
    deferrals: int = 0  # how often this node execution ran and deferred itself (DeferredRun) before this run
    max_attempts: int = 1  # the node's retry policy: a block may answer differently on its last attempt
    credentials: Mapping[str, Any] = field(default_factory=dict)  # credentials pin -> resolved credentials
    http: HttpPolicy = field(default_factory=HttpPolicy)  # what outbound requests may reach (agentflow.net)
    clock: Clock = system_clock  # "now" for blocks that read the time: the engine's clock (tests set it)
    values: KeyValuePort | None = None  # the user's key-value items (persistence blocks); None: not available
    llm: Any = None  # agentflow.llm.call.LlmRuntime for blocks that call LLMs (settings, usage, budget)
    graph: Any = None  # the running agentflow.graph.ValidGraph: the Orchestrator's tools are its links

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


@dataclass(frozen=True)
class BlockTestCase:
    """One self-test of a block: given `input` (raw node data, before coercion), the block yields `output`.

    `output` lists the expected `(pin, value)` pairs in yield order, JSON-encoded as the engine stores them.
    `error` (a substring) means the node must fail with a message containing it; `output` then lists what
    was yielded before the failure, without the final `("error", ...)` pair.
    """

    input: Mapping[str, Any]
    output: list[tuple[str, Any]]
    description: str = ""
    error: str | None = None
    mocks: Mapping[str, Any] = field(default_factory=dict)


class Block:
    """Subclass, set the class attributes, implement `run`. Register the class in `agentflow.blocks.registry`."""

    id: ClassVar[str]
    description: ClassVar[str] = ""
    categories: ClassVar[frozenset[BlockCategory]] = frozenset()
    block_type: ClassVar[BlockType] = BlockType.STANDARD
    static_output: ClassVar[bool] = (
        False  # links leaving this block are forced static (README, "Concepts": static link)
    )
    cost: ClassVar[int] = 0
    timeout_seconds: ClassVar[float | None] = None  # per attempt; None: the settings' AGENTFLOW_NODE_TIMEOUT
    former_names: ClassVar[tuple[str, ...]] = ()  # class names it had in AutoGPT, which exports may still use
    uses_llm: ClassVar[bool] = False  # calls LLMs: its time limit is AGENTFLOW_LLM_TIMEOUT, its usage is counted
    pure: ClassVar[bool] = False  # see PureBlock
    Input: ClassVar[type[BlockSchema]]
    Output: ClassVar[type[BlockSchema]]
    test_cases: ClassVar[tuple[BlockTestCase, ...]] = ()

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def run(self, input_data: Any, context: BlockContext) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError

    # -- pin introspection, used by graph validation and the API

    @classmethod
    def input_names(cls) -> frozenset[str]:
        return frozenset(cls.Input.model_fields)

    @classmethod
    def required_inputs(cls) -> frozenset[str]:
        return frozenset(name for name, f in cls.Input.model_fields.items() if f.is_required())

    @classmethod
    def output_names(cls) -> frozenset[str]:
        return frozenset(cls.Output.model_fields)

    @classmethod
    def node_input_names(cls, input_default: Mapping[str, Any]) -> frozenset[str]:
        """The input pins links may feed on one node: the block's own, unless its pins depend on the node
        (AgentExecutorBlock: the called graph's inputs)."""
        return cls.input_names()

    @classmethod
    def node_output_names(cls, input_default: Mapping[str, Any]) -> frozenset[str]:
        """The output pins links may leave from on one node (see `node_input_names`)."""
        return cls.output_names()

    @classmethod
    def accepts_output_pin(cls, pin: str, input_default: Mapping[str, Any]) -> bool:
        """Whether a link may leave from `pin` (its base name is one of `node_output_names`, unless the block's
        pins are not all known in advance: the Orchestrator's tool pins)."""
        return pin in cls.node_output_names(input_default)

    @classmethod
    def link_source_name(cls, source_name: str, sink_id: str, sink_name: str) -> str:
        """The pin name a link from this block is stored with (the Orchestrator names each tool link's pin after
        its sink, so that each tool call's arguments reach only their own tool)."""
        return source_name

    @classmethod
    def node_problems(cls, input_default: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(pin, message) for each value a node's `input_default` may not hold (checked when a graph is saved:
        e.g. an unknown LLM model). Input types are otherwise checked when the node runs."""
        return []

    @classmethod
    def waits_for(cls, missing: frozenset[str], values: Mapping[str, Any]) -> frozenset[str]:
        """Of the linked pins a slot lacks (`missing`), those it must still wait for, given the values it has.
        All of them, except for blocks whose loop pins may be absent (the Orchestrator's)."""
        return missing

    @classmethod
    def has_error_pin(cls) -> bool:
        return "error" in cls.Output.model_fields

    @classmethod
    def input_schema(cls) -> dict[str, Any]:
        return cls.Input.model_json_schema()

    @classmethod
    def output_schema(cls) -> dict[str, Any]:
        return cls.Output.model_json_schema()

    @classmethod
    def info(cls) -> dict[str, Any]:
        """The block as `GET /blocks` shows it."""
        return {
            "id": cls.id,
            "name": cls.name(),
            "description": cls.description,
            "categories": sorted(c.value for c in cls.categories),
            "block_type": cls.block_type.value,
            "static_output": cls.static_output,
            "cost": cls.cost,
            "input_schema": cls.input_schema(),
            "output_schema": cls.output_schema(),
        }


class PureBlock(Block):
    """A block with no side effects whose outputs depend on its inputs alone: running it again after a crash
    changes nothing, so its outputs are not saved apart before they propagate (docs/architecture.md, "Pure
    blocks")."""

    pure = True
