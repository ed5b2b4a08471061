"""Events the engine publishes (docs/architecture.md, "One execution, from trigger to finalize"). Events carry
ids, never payloads.

`NodeExecutionQueued` wakes the node executor for one node execution; `ExecutionStatusChanged` tells users'
own rules that a run moved. The publisher is a small protocol so tests and the local stack can swap the transport;
the deployed and the local stack both use `EventBridgePublisher` (locally against the local bus's endpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from agentflow.errors import AgentflowError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "agentflow"
NODE_EXECUTION_QUEUED = "NodeExecutionQueued"
EXECUTION_STATUS_CHANGED = "ExecutionStatusChanged"
PUT_EVENTS_BATCH = 10  # EventBridge's limit per PutEvents call


class NodeExecutionQueuedDetail(BaseModel):
    execution_id: str
    node_id: str
    seq: int


@dataclass(frozen=True)
class OutboundEvent:
    detail_type: str
    detail: dict[str, Any]

    @staticmethod
    def node_queued(execution_id: str, node_id: str, seq: int) -> OutboundEvent:
        return OutboundEvent(NODE_EXECUTION_QUEUED, {"execution_id": execution_id, "node_id": node_id, "seq": seq})

    @staticmethod
    def status_changed(execution_id: str, status: str, user_id: str, graph_id: str) -> OutboundEvent:
        return OutboundEvent(
            EXECUTION_STATUS_CHANGED,
            {"execution_id": execution_id, "status": status, "user_id": user_id, "graph_id": graph_id},
        )


class EventPublisher(Protocol):
    def publish(self, events: Sequence[OutboundEvent]) -> None: ...


class PublishError(AgentflowError, RuntimeError):
    pass


class EventBridgePublisher:
    """PutEvents in batches of ten; entries EventBridge rejects are retried, then reported."""

    def __init__(self, client: EventBridgeClient, bus_name: str, attempts: int = 4) -> None:
        self.client = client
        self.bus_name = bus_name
        self.attempts = attempts

    def publish(self, events: Sequence[OutboundEvent]) -> None:
        for start in range(0, len(events), PUT_EVENTS_BATCH):
            self._put_batch(events[start : start + PUT_EVENTS_BATCH])

    def _put_batch(self, batch: Sequence[OutboundEvent]) -> None:
        entries: list[Any] = [
            {
                "Source": SOURCE,
                "DetailType": e.detail_type,
                "Detail": json.dumps(e.detail),
                "EventBusName": self.bus_name,
            }
            for e in batch
        ]
        for attempt in range(self.attempts):
            response = self.client.put_events(Entries=entries)
            if not response.get("FailedEntryCount"):
                return
            entries = [
                entry for entry, result in zip(entries, response["Entries"], strict=True) if "ErrorCode" in result
            ]
            time.sleep(0.05 * 2**attempt)
        raise PublishError(f"EventBridge rejected {len(entries)} event(s) after {self.attempts} attempts")


class RecordingPublisher:
    """Keeps events in memory: for unit tests that drive the executor by hand."""

    def __init__(self) -> None:
        self.events: list[OutboundEvent] = []

    def publish(self, events: Sequence[OutboundEvent]) -> None:
        self.events.extend(events)

    def take(self) -> list[OutboundEvent]:
        taken, self.events = self.events, []
        return taken
