"""Trigger blocks: a graph holding one starts only from its webhook, whose payload becomes the node's input
(AutoGPT's GenericWebhookTriggerBlock and GithubPullRequestTriggerBlock: same UUIDs and pins)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
    BlockType,
)

_HIDDEN: JsonDict = {"hidden": True}  # filled by the webhook ingress, not by users


class GenericWebhookTriggerBlock(Block):
    id = "8fa8c167-2002-47ce-aba8-97572fc5d387"
    description = "Starts the graph when its webhook receives a signed JSON payload."
    categories = frozenset({BlockCategory.INPUT})
    block_type = BlockType.WEBHOOK
    webhook_provider: ClassVar[str] = "generic"

    class Input(BlockSchema):
        payload: dict[str, Any] = Field(
            default_factory=dict, description="The webhook's body.", json_schema_extra=_HIDDEN
        )
        constants: dict[str, Any] = Field(default_factory=dict, description="Values to pass along with every payload.")

    class Output(BlockSchemaOutput):
        payload: dict[str, Any] = Field(description="The webhook's body.")
        constants: dict[str, Any] = Field(description="The constants, as given.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "constants", input_data.constants
        yield "payload", input_data.payload

    test_cases: ClassVar[tuple[BlockTestCase, ...]] = (
        BlockTestCase(
            {"payload": {"a": 1}, "constants": {"env": "prod"}},
            [("constants", {"env": "prod"}), ("payload", {"a": 1})],
            "constants first, then the payload",
        ),
        BlockTestCase({}, [("constants", {}), ("payload", {})], "both default to empty objects"),
        BlockTestCase(
            {"payload": '{"n": 1}'}, [("constants", {}), ("payload", {"n": 1})], "a JSON text payload is parsed"
        ),
    )


class PullRequestEvents(BaseModel):
    """Which pull-request actions start a run (GitHub's `action` values)."""

    model_config = ConfigDict(extra="forbid")

    opened: bool = False
    edited: bool = False
    closed: bool = False
    reopened: bool = False
    synchronize: bool = False
    assigned: bool = False
    unassigned: bool = False
    labeled: bool = False
    unlabeled: bool = False
    converted_to_draft: bool = False
    locked: bool = False
    unlocked: bool = False
    enqueued: bool = False
    dequeued: bool = False
    milestoned: bool = False
    demilestoned: bool = False
    ready_for_review: bool = False
    review_requested: bool = False
    review_request_removed: bool = False
    auto_merge_enabled: bool = False
    auto_merge_disabled: bool = False


class GithubPullRequestTriggerBlock(Block):
    id = "6c60ec01-8128-419e-988f-96a063ee2fea"
    description = "Starts the graph on GitHub pull-request events of a repository (the selected actions only)."
    categories = frozenset({BlockCategory.INPUT})
    block_type = BlockType.WEBHOOK
    webhook_provider: ClassVar[str] = "github"
    github_event: ClassVar[str] = "pull_request"

    class Input(BlockSchema):
        repo: str = Field(description="owner/repository, e.g. Significant-Gravitas/AutoGPT")
        events: PullRequestEvents = Field(default_factory=PullRequestEvents, description="Actions that start a run.")
        payload: dict[str, Any] = Field(
            default_factory=dict, description="The webhook's body.", json_schema_extra=_HIDDEN
        )

    class Output(BlockSchemaOutput):
        payload: dict[str, Any] = Field(description="The whole pull_request event payload.")
        triggered_by_user: dict[str, Any] = Field(description="The GitHub user who triggered the event (`sender`).")
        event: str = Field(description="The action, e.g. opened.")
        number: int = Field(description="The pull request's number.")
        pull_request: dict[str, Any] = Field(description="The pull request object.")
        pull_request_url: str = Field(description="The pull request's web URL.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        payload = input_data.payload
        pull_request = payload.get("pull_request") or {}
        yield "payload", payload
        yield "triggered_by_user", payload.get("sender") or {}
        yield "event", str(payload.get("action", ""))
        yield "number", int(payload.get("number") or pull_request.get("number") or 0)
        yield "pull_request", pull_request
        yield "pull_request_url", str(pull_request.get("html_url", ""))

    @staticmethod
    def selects(input_default: dict[str, Any], action: str) -> bool:
        """Whether a node with these defaults starts a run for this pull-request action."""
        events = input_default.get("events") or {}
        return isinstance(events, dict) and bool(events.get(action))

    test_cases: ClassVar[tuple[BlockTestCase, ...]] = (
        BlockTestCase(
            {
                "repo": "o/r",
                "payload": {
                    "action": "opened",
                    "number": 7,
                    "sender": {"login": "ada"},
                    "pull_request": {"number": 7, "html_url": "https://github.com/o/r/pull/7"},
                },
            },
            [
                (
                    "payload",
                    {
                        "action": "opened",
                        "number": 7,
                        "sender": {"login": "ada"},
                        "pull_request": {"number": 7, "html_url": "https://github.com/o/r/pull/7"},
                    },
                ),
                ("triggered_by_user", {"login": "ada"}),
                ("event", "opened"),
                ("number", 7),
                ("pull_request", {"number": 7, "html_url": "https://github.com/o/r/pull/7"}),
                ("pull_request_url", "https://github.com/o/r/pull/7"),
            ],
            "yields payload, sender, action, number, pull request and its URL in order",
        ),
        BlockTestCase({"payload": {}}, [], "repo is required", error="missing required input 'repo'"),
        BlockTestCase(
            {"repo": "o/r", "events": {"opened": True, "bogus": True}},
            [],
            "unknown actions in events are refused",
            error="events",
        ),
    )
