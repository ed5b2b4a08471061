"""HumanInTheLoopBlock (README, "Human review"): pause for a person to approve or reject some data, maybe edited.
The engine runs its nodes itself (agentflow.executor.reviews): the first run records a review and the node waits
(WAITING) with no worker waiting; the decision (`POST /reviews/{id}`, its timeout, or a stop of the run) wakes it,
and its next run yields what `review_outputs` says, as AutoGPT's block does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import AliasChoices, Field

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
    "HUMAN_IN_THE_LOOP_ID",
    "LEGACY_OUTPUTS",
    "MAX_REVIEW_TIMEOUT_SECONDS",
    "HumanInTheLoopBlock",
    "review_outputs",
]

HUMAN_IN_THE_LOOP_ID = "8b2a7b3c-6e9d-4a5f-8c1b-2e3f4a5b6c7d"
MAX_REVIEW_TIMEOUT_SECONDS = 30 * 86_400  # a month, like the longest countdown
LEGACY_OUTPUTS = frozenset({"reviewed_data", "status"})  # the block's first pins: old exports link from them
NOT_YET = "HumanInTheLoopBlock runs only as a node of a graph: the engine records its review"


def review_outputs(approved: bool, data: Any, message: str | None, legacy: frozenset[str]) -> list[tuple[str, Any]]:
    """What the node yields once its review is decided: the (maybe edited) data on `approved_data` or
    `rejected_data`, then `review_message` (the reviewer's, else AutoGPT's default: it always fires). The legacy
    pins in `legacy` (those the node's links leave from) are yielded too."""
    outputs: list[tuple[str, Any]] = [("approved_data" if approved else "rejected_data", data)]
    default = "Execution approved by reviewer" if approved else "Execution rejected by reviewer"
    outputs.append(("review_message", message or default))
    if "reviewed_data" in legacy:
        outputs.append(("reviewed_data", data))
    if "status" in legacy:
        outputs.append(("status", "approved" if approved else "rejected"))
    return outputs


class HumanInTheLoopBlock(Block):
    id = HUMAN_IN_THE_LOOP_ID
    description = (
        "Pause execution for human review. Data flows through approved_data or rejected_data outputs based on the "
        "reviewer's decision."
    )
    categories = frozenset({BlockCategory.BASIC})
    block_type = BlockType.HUMAN_IN_THE_LOOP

    class Input(BlockSchema):
        data: Any = Field(description="The data to be reviewed by a human user.")
        name: str = Field(
            description="A descriptive name for what needs to be reviewed.",
            validation_alias=AliasChoices("name", "message"),  # `message` in the block's first version
        )
        editable: bool = Field(default=True, description="Whether the reviewer may edit the data.")
        timeout_seconds: int | None = Field(
            default=None,
            ge=1,
            le=MAX_REVIEW_TIMEOUT_SECONDS,
            description="agentflow: decide the review by on_timeout once it has waited this long (none: no limit).",
        )
        on_timeout: Literal["approve", "reject"] = Field(
            default="reject", description="agentflow: how a review past its timeout_seconds is decided."
        )

    class Output(BlockSchemaOutput):
        approved_data: Any = Field(description="The data when approved (may be modified by the reviewer).")
        rejected_data: Any = Field(description="The data when rejected (may be modified by the reviewer).")
        review_message: str = Field(description="The reviewer's message, or a default one.")

    @classmethod
    def node_output_names(cls, input_default: Mapping[str, Any]) -> frozenset[str]:
        return cls.output_names() | LEGACY_OUTPUTS

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        raise BlockError(NOT_YET)
        yield  # pragma: no cover - a generator, like every block

    test_cases = (
        BlockTestCase(
            {"data": {"x": 1}, "name": "check"}, [], "outside a graph: the engine runs its nodes", error="runs only"
        ),
        BlockTestCase({"name": "check"}, [], "data is required", error="missing required input 'data'"),
        BlockTestCase(
            {"data": 1, "name": "n", "timeout_seconds": 0},
            [],
            "a timeout is at least a second",
            error="timeout_seconds",
        ),
    )
