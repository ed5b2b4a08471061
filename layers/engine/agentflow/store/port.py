"""What the engine needs from the store, as a Protocol beside the `EventPublisher` one: the executor is typed
against it, so a fake store (or another backend) only has to provide these. `Store` satisfies it (mypy checks
`_satisfies` below)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from agentflow.clock import Clock
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store.deliveries import Delivery
from agentflow.store.dynamo import Item, Meter, Transition
from agentflow.store.endings import ChildQueue
from agentflow.store.records import ExecutionRecord, NodeRecord, PinsRecord, RecordedOutput
from agentflow.store.reviews import ReviewsPort
from agentflow.store.slots import SlotsPort
from agentflow.store.transitions import QueueResult


class RunStatePort(ReviewsPort, SlotsPort, Protocol):
    """A run's state: one metered unit of work at a time (`with_meter`), every status change conditional."""

    clock: Clock
    meter: Meter

    def with_meter(self, meter: Meter) -> RunStatePort: ...

    def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    def list_nodes(
        self, execution_id: str, node_id: str | None = None, status: NodeStatus | None = None
    ) -> list[NodeRecord]: ...

    def list_active_executions(self) -> list[ExecutionRecord]: ...

    def find_idempotent_execution(self, user_id: str, idempotency_key: str) -> str | None: ...

    def create_execution(
        self,
        execution: Item,
        inputs_json: str,
        start_nodes: list[Item],
        idempotency_key: str | None,
    ) -> tuple[str, bool]: ...

    def transition_execution(
        self,
        execution_id: str,
        target: ExecutionStatus,
        sources: Iterable[ExecutionStatus] | None = None,
        *,
        error: str | None = None,
        failure: str | None = None,
        require_pending_zero: bool = False,
        require_only_reviews: bool = False,
        require_unreviewed_work: bool = False,
        keep_listed: bool = False,
    ) -> Transition[ExecutionRecord]: ...

    def transition_node(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        target: NodeStatus,
        sources: Iterable[NodeStatus] | None = None,
    ) -> Transition[NodeRecord]: ...

    def claim_node(
        self, execution_id: str, node_id: str, seq: int, lease_seconds: float, expected_attempt: int | None = None
    ) -> Transition[NodeRecord]: ...

    def schedule_retry(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        attempt: int,
        entry: Mapping[str, Any],
        retry_at: float,
        deferral: bool = False,
    ) -> bool: ...

    def release_lease(self, execution_id: str, node_id: str, seq: int, attempt: int) -> bool: ...

    def queue_slot(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        inputs_json: str,
        delivered_pins: Iterable[str],
        skipped_pins: Iterable[str] = (),
    ) -> QueueResult: ...

    def create_slots(
        self, execution_id: str, node_id: str, block_id: str, first: int, inputs: Sequence[str], max_node_count: int
    ) -> bool: ...

    def save_node_result(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        attempt: int,
        outputs_json: str,
        error: str | None,
        stats: Mapping[str, Any] | None = None,
    ) -> bool: ...

    def deliver(
        self,
        execution_id: str,
        node_id: str,
        block_id: str,
        pin: str,
        delivery_id: str,
        value_json: str,
        static: bool,
        first: int = 0,
    ) -> Delivery: ...

    def next_slot(self, execution_id: str, node_id: str, pin: str, first: int = 0) -> int: ...

    def reserve_slots(
        self, execution_id: str, node_id: str, pin: str, reservation_id: str, count: int, first: int = 0
    ) -> int: ...

    def fill_reserved(
        self, execution_id: str, node_id: str, block_id: str, pin: str, slot: int, value_json: str
    ) -> Delivery: ...

    def get_pins(self, execution_id: str, node_id: str) -> PinsRecord: ...

    def finish_node(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        attempt: int,
        target: NodeStatus,
        *,
        unhandled_error: str | None = None,
        recorded_output: str | None = None,
        attempt_entry: Mapping[str, Any] | None = None,
        llm_usage: Mapping[str, Any] | None = None,
        result: tuple[str | None, str | None] | None = None,
        child: ChildQueue | None = None,
        reserved: int = 0,
    ) -> bool: ...

    def return_reserved(self, execution_id: str, node_id: str, seq: int, attempt: int, reserved: int) -> bool: ...

    def flush_meter(self, execution_id: str) -> None: ...

    def wait_for_child(self, execution_id: str, node_id: str, seq: int, attempt: int, child_id: str) -> bool: ...

    def list_outputs(
        self, execution_id: str, output_nodes: Iterable[str], carriers: Iterable[str] = ()
    ) -> list[RecordedOutput]: ...

    def redrive_execution(
        self, execution: ExecutionRecord, failed: list[NodeRecord]
    ) -> Transition[ExecutionRecord]: ...

    def unretire(self, execution_id: str) -> int: ...

    def put_value(self, user_id: str, scoped_key: str, value_json: str, writer: str) -> None: ...

    def get_value(self, user_id: str, scoped_key: str) -> str | None: ...

    def repair_pending(self, execution_id: str, seen: int, actual: int) -> bool: ...

    def retire(self, execution_id: str, expires_at: int | None, idempotency_pk: str | None) -> int: ...

    def put_graph_version(self, user_id: str, graph_id: str, name: str, graph_json: str) -> int: ...

    def get_graph_version(self, user_id: str, graph_id: str, version: int) -> str | None: ...
