"""The executor (DESIGN §5): start, claim, run, propagate, finish, finalize, stop, resume.

Every step is safe to repeat: events are delivered at least once, and a worker may die between any two writes.
  - a start with the same idempotency key finds the same execution; only the winner of INCOMPLETE -> QUEUED
    publishes the starting nodes;
  - a claim is a conditional write, so a duplicate event finds the node taken and returns quietly;
  - outputs are saved before they propagate, so a retry propagates the saved outputs instead of re-running;
  - each delivery records its id in the same write that assigns its slot, so a replay lands in the same slot;
  - a node finishes and `pending` drops in one transaction, after its children were counted in, so `pending`
    reaches 0 exactly when nothing is left, and whoever sees 0 finalizes (a conditional write again).
Nothing here knows whether it runs in Lambda or on the local stack.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agentflow import keys
from agentflow.blocks.execution import execute_block
from agentflow.blocks.sdk import BlockContext, BlockType
from agentflow.clock import epoch_of
from agentflow.config import Settings
from agentflow.events import EventPublisher, OutboundEvent
from agentflow.graph import GraphValidationError, Link, Problem, ValidGraph, validate_graph, validate_inputs
from agentflow.pins import select_output
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import Item, ItemTooLarge, Meter, QueueOutcome, Store, Transition

logger = logging.getLogger(__name__)

E = ExecutionStatus
N = NodeStatus


class NodeRunOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    TERMINATED = "terminated"  # the execution was stopped or had ended; the node will resume or never run
    DUPLICATE = "duplicate"  # another delivery holds or finished this node execution
    LOST_LEASE = "lost_lease"  # the lease expired and another worker took over
    MISSING = "missing"  # no such execution or node execution


class GraphNotFound(LookupError):
    pass


@dataclass
class SweepReport:
    executions: int = 0  # unfinished executions looked at
    republished: int = 0  # node events published again (lost QUEUED events, expired leases)
    started: int = 0  # starts that died between writing the execution and publishing its nodes
    finalized: int = 0  # runs whose pending count reached 0 without anyone finalizing them
    repaired: int = 0  # pending counts that disagreed with the node items
    retired: int = 0  # finished runs whose items were given their expiry (retention) by the sweep


def _age_seconds(timestamp: str | None, now: float) -> float:
    if not timestamp:
        return float("inf")
    return now - epoch_of(timestamp)


@dataclass(frozen=True)
class StartResult:
    execution_id: str
    created: bool  # False when an idempotency key found an earlier execution


MAX_START_BYTES = 100_000  # a run's inputs travel in node items (400 KB each) beside their outputs


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


class Engine:
    def __init__(self, store: Store, publisher: EventPublisher, settings: Settings) -> None:
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self._graphs: dict[tuple[str, str, int], ValidGraph] = {}  # versions are immutable: cache freely

    # -- graphs

    def register_graph(self, user_id: str, graph: ValidGraph, graph_id: str | None = None) -> tuple[str, int]:
        """Store `graph` as a new version of `graph_id` (a new graph when None); returns (graph id, version)."""
        graph_id = graph_id or str(uuid.uuid4())
        version = self.store.put_graph_version(user_id, graph_id, graph.graph.name, graph.graph.to_json())
        self._graphs[(user_id, graph_id, version)] = graph
        return graph_id, version

    def load_graph(self, user_id: str, graph_id: str, version: int, store: Store | None = None) -> ValidGraph:
        key = (user_id, graph_id, version)
        if key not in self._graphs:
            raw = (store or self.store).get_graph_version(user_id, graph_id, version)
            if raw is None:
                raise GraphNotFound(f"graph {graph_id} version {version} not found")
            self._graphs[key] = validate_graph(raw)
        return self._graphs[key]

    # -- start

    def start_execution(
        self,
        user_id: str,
        graph_id: str,
        graph_version: int,
        inputs: Mapping[str, Any],
        idempotency_key: str | None = None,
        trigger_payload: Mapping[str, Any] | None = None,
    ) -> StartResult:
        """Start a run. A graph with a trigger block starts only with `trigger_payload` (from its webhook)."""
        store = self.store.with_meter(Meter())
        graph = self.load_graph(user_id, graph_id, graph_version, store)
        trigger = graph.trigger_node
        if trigger is not None and trigger_payload is None:
            raise GraphValidationError(
                [
                    Problem(
                        "this graph starts only from its webhook (create one with POST /graphs/{id}/webhooks)",
                        trigger.id,
                    )
                ],
                what="start",
            )
        if trigger is None and trigger_payload is not None:
            raise GraphValidationError([Problem("this graph has no trigger block to receive a webhook")], what="start")
        validate_inputs(graph, inputs)
        try:
            inputs_json = dumps(dict(inputs))
            payload_json = dumps(dict(trigger_payload or {}))
        except (TypeError, ValueError) as exc:
            raise GraphValidationError([Problem(f"inputs are not JSON: {exc}")], what="inputs") from exc
        for what, text in (("inputs", inputs_json), ("webhook payload", payload_json)):
            if len(text.encode()) > MAX_START_BYTES:
                raise GraphValidationError(
                    [Problem(f"the {what} are {len(text.encode())} bytes as JSON; the limit is {MAX_START_BYTES}")],
                    what="inputs",
                )

        if idempotency_key is not None:
            existing = store.find_idempotent_execution(user_id, idempotency_key)
            if existing is not None:
                self._publish_start(store, existing)  # finishes a start that died before publishing
                store.flush_meter(existing)
                return StartResult(existing, created=False)

        execution_id = str(uuid.uuid4())
        start_nodes = []
        for node in graph.starting_nodes:
            data = dict(node.input_default)
            if graph.block(node.id).block_type is BlockType.INPUT and node.input_default.get("name") in inputs:
                data["value"] = inputs[node.input_default["name"]]
            if trigger is not None and node.id == trigger.id:
                data["payload"] = dict(trigger_payload or {})
            start_nodes.append({"node_id": node.id, "seq": 0, "block_id": node.block_id, "inputs": dumps(data)})
        execution = {
            "execution_id": execution_id,
            "user_id": user_id,
            "graph_id": graph_id,
            "graph_version": graph_version,
            "node_limit": graph.node_execution_limit,
        }
        execution_id, created = store.create_execution(execution, inputs_json, start_nodes, idempotency_key)
        self._publish_start(store, execution_id)
        store.flush_meter(execution_id)
        return StartResult(execution_id, created)

    def _publish_start(self, store: Store, execution_id: str) -> None:
        moved = store.transition_execution(execution_id, E.QUEUED, [E.INCOMPLETE])
        if not moved.won:
            return  # another starter won and publishes
        events = [
            OutboundEvent.node_queued(execution_id, n["node_id"], int(n["seq"]))
            for n in store.list_nodes(execution_id, status=N.QUEUED.value)
        ]
        self._publish(store, [*events, self._status_event(moved)])

    # -- one node execution

    def run_node(self, execution_id: str, node_id: str, seq: int, lease_seconds: float | None = None) -> NodeRunOutcome:
        """Handle one NodeExecutionQueued event. Safe under duplicate and concurrent delivery."""
        store = self.store.with_meter(Meter())
        try:
            return self._run_node(store, execution_id, node_id, seq, lease_seconds)
        finally:
            store.flush_meter(execution_id)

    def _run_node(
        self, store: Store, execution_id: str, node_id: str, seq: int, lease_seconds: float | None
    ) -> NodeRunOutcome:
        execution = store.get_execution(execution_id)
        if execution is None:
            logger.warning("event for unknown execution %s", execution_id)
            return NodeRunOutcome.MISSING
        status = E(execution["status"])
        if status in (E.TERMINATED, E.COMPLETED, E.FAILED):
            if store.transition_node(execution_id, node_id, seq, N.TERMINATED, [N.QUEUED]).won:
                self._requeue_if_resumed(store, execution_id, node_id, seq)
            return NodeRunOutcome.TERMINATED
        if status in (E.INCOMPLETE, E.QUEUED):
            moved = store.transition_execution(execution_id, E.RUNNING, [E.INCOMPLETE, E.QUEUED])
            if moved.won:
                self._publish(store, [self._status_event(moved)])

        claim = store.claim_node(execution_id, node_id, seq, lease_seconds or self.settings.default_lease_seconds)
        if not claim.won:
            return NodeRunOutcome.MISSING if claim.item is None else NodeRunOutcome.DUPLICATE
        node = claim.item
        assert node is not None
        attempt = int(node["attempts"])
        try:
            graph = self.load_graph(execution["user_id"], execution["graph_id"], int(execution["graph_version"]), store)
        except GraphNotFound as exc:  # cannot happen through the API (versions outlive their graph); never hang
            logger.error("execution %s: %s", execution_id, exc)
            failed = store.transition_execution(
                execution_id, E.FAILED, [E.RUNNING], error=str(exc), keep_listed=self._retains
            )
            self._ended(store, failed)
            return NodeRunOutcome.FAILED
        block = graph.block(node_id)

        if "outputs" in node:  # an earlier attempt ran the block and died before finishing: don't run it again
            outputs = [tuple(pair) for pair in json.loads(node["outputs"])]
            error: str | None = node.get("error")
        else:
            if attempt > self.settings.max_attempts:
                error = (
                    f"gave up after {attempt - 1} attempts: the worker stopped before finishing "
                    "(timeout or crash; the lease expired)"
                )
                outputs = [("error", error)]
            else:
                context = BlockContext(
                    user_id=execution["user_id"],
                    graph_id=execution["graph_id"],
                    graph_version=int(execution["graph_version"]),
                    execution_id=execution_id,
                    node_id=node_id,
                    node_exec_id=f"{node_id}#{seq}",
                )
                run = execute_block(block, json.loads(node.get("inputs") or "{}"), context)
                outputs, error = list(run.outputs), run.error
            encoded = dumps(outputs)
            size = len(encoded.encode()) + len(str(node.get("inputs") or "").encode())  # both share the node item
            if size > self.settings.max_value_bytes:
                error = (
                    f"inputs and outputs are {size} bytes; a node's inputs and outputs together are limited to "
                    f"{self.settings.max_value_bytes} bytes (one DynamoDB item)"
                )
                outputs = [("error", error)]
                encoded = dumps(outputs)
            if not store.save_node_result(execution_id, node_id, seq, attempt, encoded, error):
                return NodeRunOutcome.LOST_LEASE

        try:
            propagated = self._propagate(store, execution, graph, node_id, seq, outputs)
        except ItemTooLarge as exc:
            # e.g. a sink that received more values than one item can record: fail loudly, never silently
            error = f"a value could not be delivered: a DynamoDB item would exceed 400 KB ({exc})"
            propagated = True
        if not propagated:
            return self._finish_terminated(store, execution, node_id, seq, attempt)

        target = N.FAILED if error is not None else N.COMPLETED
        unhandled = None
        if error is not None and not graph.error_is_handled(node_id):
            unhandled = f"node {node_id} ({block.name()}) failed: {error}"
        recorded = None
        if block.block_type is BlockType.OUTPUT and error is None:
            data = json.loads(node.get("inputs") or "{}")
            recorded = (str(data.get("name")), dumps(data.get("value")))
        if not store.finish_node(
            execution_id, node_id, seq, attempt, target, unhandled_error=unhandled, recorded_output=recorded
        ):
            return NodeRunOutcome.LOST_LEASE
        self._maybe_finalize(store, execution_id)
        return NodeRunOutcome.FAILED if error is not None else NodeRunOutcome.COMPLETED

    def _finish_terminated(self, store: Store, execution: Item, node_id: str, seq: int, attempt: int) -> NodeRunOutcome:
        """The run was stopped while this node ran: keep its saved outputs, and propagate them on resume."""
        execution_id = execution["execution_id"]
        if not store.finish_node(execution_id, node_id, seq, attempt, N.TERMINATED):
            return NodeRunOutcome.LOST_LEASE
        self._requeue_if_resumed(store, execution_id, node_id, seq)
        return NodeRunOutcome.TERMINATED

    def _requeue_if_resumed(self, store: Store, execution_id: str, node_id: str, seq: int) -> None:
        """A resume may have listed the nodes before this one became TERMINATED (it then saw it QUEUED or
        RUNNING and left it): if the run is RUNNING again, re-queue the node ourselves. Only one of us and the
        resume wins the TERMINATED -> QUEUED write."""
        now = store.get_execution(execution_id)
        if now is not None and now["status"] == E.RUNNING.value:
            requeued = store.transition_node(execution_id, node_id, seq, N.QUEUED, [N.TERMINATED])
            if requeued.won:
                self._publish(store, [OutboundEvent.node_queued(execution_id, node_id, seq)])

    # -- propagation

    def _propagate(
        self,
        store: Store,
        execution: Item,
        graph: ValidGraph,
        node_id: str,
        seq: int,
        outputs: Sequence[tuple[Any, ...]],
    ) -> bool:
        """Deliver every output along every link that selects it. False when the execution stopped running."""
        queued: list[OutboundEvent] = []
        try:
            for out_index, (pin, value) in enumerate(outputs):
                for link_index, link in graph.links_from[node_id]:
                    fires, selected = select_output(pin, value, link.source_name)
                    if not fires:
                        continue
                    delivery_id = f"{node_id}#{seq}/{out_index}/{link_index}"
                    if not self._deliver(store, execution, graph, link, delivery_id, selected, queued):
                        return False
            return True
        finally:
            self._publish(store, queued)

    def _deliver(
        self,
        store: Store,
        execution: Item,
        graph: ValidGraph,
        link: Link,
        delivery_id: str,
        value: Any,
        queued: list[OutboundEvent],
    ) -> bool:
        execution_id = execution["execution_id"]
        sink = link.sink_id
        delivery = store.deliver(
            execution_id, sink, graph.nodes[sink].block_id, link.sink_name, delivery_id, dumps(value), link.is_static
        )
        if not self._try_queue(store, execution, graph, sink, delivery.slot, delivery.node, queued, delivery.replay):
            return False
        if link.is_static and max(delivery.counters.values(), default=0) > 1:
            # Backfill: slots that were waiting only for this static value can run now.
            for item in store.list_nodes(execution_id, sink, status=N.INCOMPLETE.value):
                if int(item["seq"]) != delivery.slot and not self._try_queue(
                    store, execution, graph, sink, int(item["seq"]), item, queued, replay=False
                ):
                    return False
        return True

    def _try_queue(
        self,
        store: Store,
        execution: Item,
        graph: ValidGraph,
        node_id: str,
        seq: int,
        slot: Item | None,
        queued: list[OutboundEvent],
        replay: bool,
    ) -> bool:
        """Queue a slot if every linked pin has its value. False only when the execution stopped running."""
        execution_id = execution["execution_id"]
        if slot is None:
            return True
        if slot.get("status") != N.INCOMPLETE.value:
            if replay and slot.get("status") == N.QUEUED.value:
                queued.append(OutboundEvent.node_queued(execution_id, node_id, seq))  # the first publish may be lost
            return True
        own = {
            pin: json.loads(slot[keys.PIN_VALUE + pin])
            for pin in graph.linked_pins[node_id]
            if keys.PIN_VALUE + pin in slot
        }
        missing = graph.linked_pins[node_id] - own.keys()
        if missing:
            if not missing <= graph.static_pins[node_id]:
                return True  # waiting for a value that only a later delivery brings
            pins = store.get_pins(execution_id, node_id)
            for pin in missing:
                if keys.STATIC + pin not in pins:
                    return True
                own[pin] = json.loads(pins[keys.STATIC + pin])
        data = {**graph.nodes[node_id].input_default, **own}
        delivered = [pin for pin in graph.linked_pins[node_id] if keys.PIN_VALUE + pin in slot]
        result = store.queue_slot(execution_id, node_id, seq, dumps(data), delivered)
        if result.outcome is QueueOutcome.QUEUED:
            queued.append(OutboundEvent.node_queued(execution_id, node_id, seq))
            return True
        if result.outcome is QueueOutcome.ALREADY:
            return True
        if result.outcome is QueueOutcome.LIMIT:
            limit = graph.node_execution_limit
            failed = store.transition_execution(
                execution_id,
                E.FAILED,
                [E.RUNNING],
                error=f"node execution limit reached: the run queued {limit} node executions "
                f"(node_execution_limit={limit}); a loop that never ends?",
                keep_listed=self._retains,
            )
            self._ended(store, failed)
        return False

    # -- finalize, stop, resume

    def _maybe_finalize(self, store: Store, execution_id: str) -> bool:
        """Finalize a RUNNING run whose pending count is 0; True when this call did it."""
        execution = store.get_execution(execution_id)
        if execution is None or execution["status"] != E.RUNNING.value or int(execution["pending"]) != 0:
            return False
        target = E.FAILED if int(execution.get("failed_nodes", 0)) > 0 else E.COMPLETED
        done = store.transition_execution(
            execution_id, target, [E.RUNNING], require_pending_zero=True, keep_listed=self._retains
        )
        self._ended(store, done)
        return done.won

    # -- retention

    @property
    def _retains(self) -> bool:
        """Whether finished runs expire (AGENTFLOW_RETENTION_DAYS > 0): they then stay on the sweeper's index
        until their items carry `expires_at`."""
        return self.settings.retention_seconds > 0

    def _ended(self, store: Store, ended: Transition) -> None:
        """After a run reached COMPLETED or FAILED: the winner announces it and stamps its retention."""
        if not ended.won or ended.item is None:
            return
        self._publish(store, [self._status_event(ended)])
        if self._retains:
            try:
                self._retire(store, ended.item)
            except Exception:  # the sweeper finishes it: the run stays on its index until retired
                logger.exception(
                    "retention of execution %s failed; the sweeper will retry", ended.item.get("execution_id")
                )

    def _retire(self, store: Store, execution: Item) -> None:
        ended_at = execution.get("ended_at") or execution.get("updated_at")
        ended = epoch_of(str(ended_at)) if ended_at else store.clock()
        expires_at = int(ended + self.settings.retention_seconds)
        store.retire(str(execution["execution_id"]), expires_at, execution.get("idempotency_pk"))

    # -- recovery of a crashed local stack

    def recover_abandoned(self) -> SweepReport:
        """Move on at once every run that a dead process left: take over the leases it held, then sweep with
        no stale threshold. Only for a store no other live process works on (the local stack that owns its
        data folder), since it voids every lease."""
        for execution in self.store.list_active_executions():
            execution_id = str(execution["execution_id"])
            for node in self.store.list_nodes(execution_id, status=N.RUNNING.value):
                self.store.release_lease(execution_id, node["node_id"], int(node["seq"]), int(node["attempts"]))
        return self.sweep(stale_after_seconds=0)

    def stop(self, execution_id: str) -> Transition:
        """Stop a run: nodes claimed from now on become TERMINATED and nothing new is queued."""
        store = self.store.with_meter(Meter())
        try:
            stopped = store.transition_execution(execution_id, E.TERMINATED)
            if stopped.won:
                self._publish(store, [self._status_event(stopped)])
            return stopped
        finally:
            store.flush_meter(execution_id)

    def resume(self, execution_id: str) -> Transition:
        """TERMINATED -> RUNNING, then re-queue every TERMINATED node and re-publish every QUEUED one."""
        store = self.store.with_meter(Meter())
        try:
            resumed = store.transition_execution(execution_id, E.RUNNING, [E.TERMINATED])
            if not resumed.won:
                return resumed
            events = [self._status_event(resumed)]
            for node in store.list_nodes(execution_id):
                node_id, seq = node["node_id"], int(node["seq"])
                if node["status"] == N.TERMINATED.value:
                    if store.transition_node(execution_id, node_id, seq, N.QUEUED, [N.TERMINATED]).won:
                        events.append(OutboundEvent.node_queued(execution_id, node_id, seq))
                elif node["status"] == N.QUEUED.value:
                    events.append(OutboundEvent.node_queued(execution_id, node_id, seq))
            self._publish(store, events)
            self._maybe_finalize(store, execution_id)
            return resumed
        finally:
            store.flush_meter(execution_id)

    # -- sweep

    def sweep(self, stale_after_seconds: float = 120.0, now: float | None = None) -> SweepReport:
        """Move on every run that something left behind (DESIGN §5): a start that died before publishing, node
        events that were lost, leases that expired (the claim takes them over, or fails the node after the
        attempt limit), runs drained to pending = 0 that nobody finalized, and pending counts that disagree
        with the node items. Safe to run any number of times, concurrently with the executors."""
        report = SweepReport()
        now = self.store.clock() if now is None else now
        for execution in self.store.list_active_executions():
            report.executions += 1
            try:
                self._sweep_execution(execution, stale_after_seconds, now, report)
            except Exception:  # one broken run must not stop the sweep of the others
                logger.exception("sweeping execution %s failed", execution.get("execution_id"))
        return report

    def _sweep_execution(self, execution: Item, stale_after: float, now: float, report: SweepReport) -> None:
        execution_id = execution["execution_id"]
        store = self.store.with_meter(Meter())
        try:
            status = execution["status"]
            if status == E.INCOMPLETE.value:
                if _age_seconds(execution.get("created_at"), now) > stale_after:
                    self._publish_start(store, execution_id)
                    report.started += 1
                return
            if status in (E.COMPLETED.value, E.FAILED.value):  # ended, but its retention was not stamped
                if self._retains:
                    self._retire(store, execution)
                    report.retired += 1
                else:  # retention was switched off since it ended: keep it forever, off the index
                    store.retire(execution_id, None, None)
                return
            if status not in (E.QUEUED.value, E.RUNNING.value):
                return
            nodes = store.list_nodes(execution_id)
            lost = [n for n in nodes if self._looks_lost(n, stale_after, now)]
            if status == E.RUNNING.value:
                # a TERMINATED node in a RUNNING run was left behind by a stop/resume race: queue it again
                for node in nodes:
                    stale = _age_seconds(node.get("updated_at"), now) > stale_after
                    if node["status"] == N.TERMINATED.value and stale:
                        moved = store.transition_node(
                            execution_id, node["node_id"], int(node["seq"]), N.QUEUED, [N.TERMINATED]
                        )
                        if moved.won:
                            lost.append(node)
            events = [OutboundEvent.node_queued(execution_id, n["node_id"], int(n["seq"])) for n in lost]
            self._publish(store, events)
            report.republished += len(events)

            counted = sum(1 for n in nodes if n["status"] in (N.QUEUED.value, N.RUNNING.value, N.TERMINATED.value))
            pending = int(execution.get("pending", 0))
            quiet = (
                all(_age_seconds(n.get("updated_at") or n.get("queued_at"), now) > stale_after for n in nodes)
                and _age_seconds(execution.get("updated_at"), now) > stale_after
            )
            if pending != counted and quiet:
                logger.error(
                    "execution %s: pending is %d but %d node executions are unfinished; repairing",
                    execution_id,
                    pending,
                    counted,
                )
                if store.repair_pending(execution_id, pending, counted):
                    report.repaired += 1
                    pending = counted
            if status == E.RUNNING.value and pending == 0 and self._maybe_finalize(store, execution_id):
                report.finalized += 1
        finally:
            store.flush_meter(execution_id)

    @staticmethod
    def _looks_lost(node: Item, stale_after: float, now: float) -> bool:
        """A QUEUED node nobody claimed for a while, or a RUNNING node whose worker's lease ran out."""
        if node["status"] == N.QUEUED.value:
            return _age_seconds(node.get("updated_at") or node.get("queued_at"), now) > stale_after
        return node["status"] == N.RUNNING.value and int(node.get("lease_until", 0)) < now * 1000

    # -- events

    def _publish(self, store: Store, events: Sequence[OutboundEvent]) -> None:
        if events:
            self.publisher.publish(events)
            store.meter.events_published += len(events)

    @staticmethod
    def _status_event(transition: Transition) -> OutboundEvent:
        item = transition.item or {}
        return OutboundEvent.status_changed(
            str(item.get("execution_id")), str(item.get("status")), str(item.get("user_id")), str(item.get("graph_id"))
        )
