"""Propagation: every value a node yields goes down every link that selects it, into the sink's next free slot
(FIFO per pin); the write that completes a slot queues it. Each delivery's id is recorded in the same write that
assigns its slot, so a replayed delivery lands in the same slot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentflow.events import OutboundEvent
from agentflow.executor.base import dumps
from agentflow.executor.inline import InlineChain
from agentflow.executor.lifecycle import Lifecycle
from agentflow.executor.outputs import run_output_now
from agentflow.graph import Link, ValidGraph
from agentflow.pins import select_output
from agentflow.statuses import NodeStatus
from agentflow.store import ChildQueue, NodeRecord, QueueOutcome, RunStatePort

N = NodeStatus
CREATE_BATCH = 99  # slots per transaction: TransactWriteItems takes 100 actions, one of them the execution's
CREATE_BATCH_BYTES = 3_000_000  # and 4 MB; a value may be up to 300 KB
# Node executions a chain's direct child reserves when it is all its run is doing: the next ones are paid from it, and
# their finishes leave the execution's META alone (docs/architecture.md, "Chains")
CHAIN_RESERVATION = 32


@dataclass
class Hop:
    """One node's propagation: where it writes, which run and graph, and the node events it queued."""

    store: RunStatePort
    execution_id: str
    graph: ValidGraph
    queued: list[OutboundEvent] = field(default_factory=list)
    replayed: bool = False  # an event among them is a replay's: the slot was queued (and maybe run) before
    fold: bool = False  # the node's finish may queue its only ready child (docs/architecture.md, "Chains")
    deferred: ChildQueue | None = None  # that child, while it is the only one
    fresh: int = 0  # slots this propagation queued itself
    first_attempt: bool = False  # no earlier attempt of the node can have delivered anything
    direct: tuple[Link, str, Any] | None = None  # the deferred child's link, delivery id and value, if direct
    lease_seconds: float | None = None  # the lease of the deferred child, when it is created claimed
    attempt: int = 0  # the node's
    reserved: int = 0  # the node's reservation (0 once given back)
    alone: bool = False  # the node was all its run had pending when it started
    node_count: int = 0  # the run's node_count then
    failed: bool = False  # the node failed (what it sends is its error): its children run on their own


class Propagation(Lifecycle):
    def _propagate(
        self, hop: Hop, node_id: str, seq: int, outputs: Sequence[Any], chain: InlineChain | None = None
    ) -> bool:
        """Deliver every output along every link that selects it. False when the execution stopped running. With
        a `chain`, a single child this propagation queued is held for the worker to run (executor/inline.py); with
        `hop.fold`, a single ready child is left in `hop.deferred` for the node's finish to queue."""
        done = False
        sent: dict[int, list[tuple[int, Any]]] = {}  # link index -> (output index, value) in output order
        for out_index, (pin, value) in enumerate(outputs):
            for link_index, link in hop.graph.links_from[node_id]:
                fires, selected = select_output(pin, value, link.source_name)
                if fires:
                    sent.setdefault(link_index, []).append((out_index, selected))
        try:
            if self._deliver_direct(hop, node_id, seq, sent, chain):
                done = True
                return True
            if hop.reserved and sent:  # given back first, so that the slots it makes ready meet the limit exactly
                self._give_back(hop, node_id, seq)
            for link_index, link in hop.graph.links_from[node_id]:
                values = sent.get(link_index, [])
                if len(values) > 1 and not link.is_static:  # a fan-out: its slots in one reservation
                    if not self._deliver_reserved(hop, link, f"{node_id}#{seq}/*/{link_index}", values):
                        return False
                    continue
                if len(values) == 1 and link_index in hop.graph.first_value_links:
                    if not self._fill_first(hop, link, values[0][1]):
                        return False
                    continue
                for out_index, selected in values:
                    if not self._deliver(hop, link, f"{node_id}#{seq}/{out_index}/{link_index}", selected):
                        return False
            done = True
            return True
        finally:
            self._release(hop, chain if done else None)

    def _deliver_direct(
        self,
        hop: Hop,
        node_id: str,
        seq: int,
        sent: dict[int, list[tuple[int, Any]]],
        chain: InlineChain | None,
    ) -> bool:
        """A node's first attempt that sends one value to one sink which needs nothing else to run (one linked pin,
        not static): the sink's slot is created, queued, by the node's finish itself, with no delivery record and
        no separate fill (docs/architecture.md, "Chains"); claimed for the worker, when its chain has room for it.
        A retry finds the node's attempt taken, and delivers the recorded way; the slot number this one took stays
        unused."""
        if not (hop.fold and hop.first_attempt) or len(sent) != 1:
            return False
        ((link_index, values),) = sent.items()
        if len(values) != 1:
            return False
        link = hop.graph.graph.links[link_index]
        sink, pin = link.sink_id, link.sink_name
        if hop.graph.linked_pins[sink] != {pin} or pin in hop.graph.static_pins[sink]:
            return False
        out_index, value = values[0]
        first = hop.graph.first_counted_slot(sink)
        # A sole-source sink's slot 0 is its source's first execution's: no number to take (no PINS item at all)
        slot = 0 if first and seq == 0 else hop.store.next_slot(hop.execution_id, sink, pin, first)
        inputs = {**hop.graph.nodes[sink].input_default, pin: value}
        block_id = hop.graph.nodes[sink].block_id
        hop.direct = (link, f"{node_id}#{seq}/{out_index}/{link_index}", value)
        if (outputs_json := self._run_output_now(hop, sink, slot, inputs)) is not None:
            hop.deferred = ChildQueue(sink, slot, dumps(inputs), (pin,), block_id, outputs_json=outputs_json)
            return True
        lease_until = None
        if chain is not None and chain.has_room(lease := self._time_limit(hop.graph, sink)):
            hop.lease_seconds = lease
            lease_until = int((hop.store.clock() + lease) * 1000)
        counted, reserved, most = self._child_count(hop)
        hop.deferred = ChildQueue(
            sink, slot, dumps(inputs), (pin,), block_id, lease_until, counted, reserved, max_node_count=most
        )
        return True

    @staticmethod
    def _run_output_now(hop: Hop, sink: str, seq: int, inputs: dict[str, Any]) -> str | None:
        """An output node with nothing after it, run by its sender so that the sender's finish records it ended on
        its own item: its outputs (JSON), or None when it runs on its own (executor/outputs.py)."""
        if hop.failed:  # a redrive runs the node again: nothing of this attempt may stay on its item
            return None
        return run_output_now(hop.graph, hop.execution_id, sink, seq, inputs, hop.store.clock)

    @staticmethod
    def _give_back(hop: Hop, node_id: str, seq: int) -> None:
        """Return the node's reservation. Refused only when its attempt was taken over: its finish will be too."""
        if hop.store.return_reserved(hop.execution_id, node_id, seq, hop.attempt, hop.reserved):
            hop.reserved = 0

    @staticmethod
    def _child_count(hop: Hop) -> tuple[int, int, int | None]:
        """What a direct child adds to `node_count` in its parent's finish, the reservation it holds, and the most
        `node_count` may be before: paid from the parent's reservation; or, for a node that is all its run is
        doing, far enough from the limit, itself and a new reservation; or itself alone."""
        if hop.reserved > 0:
            return 0, hop.reserved - 1, None
        limit = hop.graph.node_execution_limit
        if hop.alone and hop.node_count + 1 + CHAIN_RESERVATION <= limit:
            return 1 + CHAIN_RESERVATION, CHAIN_RESERVATION, limit - 1 - CHAIN_RESERVATION
        return 1, 0, None

    def _deliver_reserved(self, hop: Hop, link: Link, reservation_id: str, values: list[tuple[int, Any]]) -> bool:
        """Deliver a link's values into consecutive slots reserved at once (FIFO per pin, as one by one). To a sink
        that needs nothing else they are created queued, many per transaction (`_create_reserved`); the values
        that could not be go one by one, as to any other sink."""
        sink, pin = link.sink_id, link.sink_name
        block_id = hop.graph.nodes[sink].block_id
        first = hop.graph.first_counted_slot(sink)
        base = hop.store.reserve_slots(hop.execution_id, sink, pin, reservation_id, len(values), first)
        created = 0
        if hop.graph.linked_pins[sink] == {pin} and pin not in hop.graph.static_pins[sink]:
            if not self._queue_deferred(hop):  # queued before the rest, as `_try_queue` does for a second child
                return False
            created = self._create_reserved(hop, sink, pin, base, [value for _, value in values])
        for offset, (_, value) in enumerate(values[created:], start=created):
            delivery = hop.store.fill_reserved(hop.execution_id, sink, block_id, pin, base + offset, dumps(value))
            if not self._try_queue(hop, sink, delivery.slot, delivery.node, delivery.replay):
                return False
        return True

    def _create_reserved(self, hop: Hop, sink: str, pin: str, base: int, values: list[Any]) -> int:
        """Create the sink's reserved slots queued, each with its one value, up to CREATE_BATCH (and about
        CREATE_BATCH_BYTES of inputs) per transaction; how many were created, in order. A refused batch (a stop,
        the node limit near, slots an earlier attempt wrote) ends it: the rest go the recorded way, which tells
        those cases apart (docs/architecture.md, "Fan-outs")."""
        node = hop.graph.nodes[sink]
        limit = hop.graph.node_execution_limit
        created = 0
        while created < len(values):
            batch: list[str] = []
            size = 0
            for value in values[created : created + CREATE_BATCH]:
                text = dumps({**node.input_default, pin: value})
                if batch and size + len(text) > CREATE_BATCH_BYTES:
                    break
                batch.append(text)
                size += len(text)
            first = base + created
            if limit - len(batch) < 0 or not hop.store.create_slots(
                hop.execution_id, sink, node.block_id, first, batch, limit - len(batch)
            ):
                return created
            hop.queued.extend(OutboundEvent.node_queued(hop.execution_id, sink, first + i) for i in range(len(batch)))
            hop.fresh += len(batch)
            created += len(batch)
        return created

    def _release(self, hop: Hop, chain: InlineChain | None) -> None:
        """Publish what the propagation queued, but the one child a chain keeps to run itself."""
        events = hop.queued
        if chain is not None and self._holds(chain, hop.graph, hop):
            chain.held, events = events[0], []
        hop.queued = []
        self._publish(hop.store, events)

    def _queue_deferred(self, hop: Hop) -> bool:
        """Queue the deferred child on its own, as without the fold. False only when the run stopped running."""
        child, hop.deferred = hop.deferred, None
        if child is None:
            return True
        if hop.direct is not None:  # never written: delivered now the recorded way, then queued on its own
            (link, delivery_id, value), hop.direct, hop.fold, hop.lease_seconds = hop.direct, None, False, None
            return self._deliver(hop, link, delivery_id, value)
        return self._queue(hop, child.node_id, child.seq, child.inputs_json, list(child.delivered_pins), frozenset())

    def _holds(self, chain: InlineChain, graph: ValidGraph, hop: Hop) -> bool:
        """Whether the worker keeps the one child this propagation queued, to run it itself."""
        if len(hop.queued) != 1 or hop.replayed or hop.deferred is not None:
            return False
        return chain.has_room(self._time_limit(graph, str(hop.queued[0].detail["node_id"])))

    def _time_limit(self, graph: ValidGraph, node_id: str) -> float:
        """The time a node's block gets from a fresh invocation's lease, bookkeeping included (executor/node.py)."""
        raise NotImplementedError

    def _deliver(self, hop: Hop, link: Link, delivery_id: str, value: Any) -> bool:
        sink = link.sink_id
        block_id = hop.graph.nodes[sink].block_id
        first = hop.graph.first_counted_slot(sink)
        delivery = hop.store.deliver(
            hop.execution_id, sink, block_id, link.sink_name, delivery_id, dumps(value), link.is_static, first
        )
        if not self._try_queue(hop, sink, delivery.slot, delivery.node, delivery.replay):
            return False
        if link.is_static and max(delivery.counters.values(), default=0) > 1:
            # Backfill: slots that were waiting only for this static value can run now.
            for waiting in hop.store.list_nodes(hop.execution_id, sink, status=N.INCOMPLETE):
                seq = waiting.seq
                if seq != delivery.slot and not self._try_queue(hop, sink, seq, waiting, replay=False):
                    return False
        return True

    def _fill_first(self, hop: Hop, link: Link, value: Any) -> bool:
        """The one value the one execution of a node that runs once sends down a link into a pin nothing else
        feeds: it can only ever be that pin's first, so it fills slot 0 itself, with no delivery record to write
        and to stamp (docs/architecture.md, "Joins fed once"). A replay finds the pin filled, as with a record."""
        sink = link.sink_id
        block_id = hop.graph.nodes[sink].block_id
        delivery = hop.store.fill_reserved(hop.execution_id, sink, block_id, link.sink_name, 0, dumps(value))
        return self._try_queue(hop, sink, delivery.slot, delivery.node, delivery.replay)

    def _try_queue(self, hop: Hop, node_id: str, seq: int, slot: NodeRecord | None, replay: bool) -> bool:
        """Queue a slot if every linked pin has its value. False only when the execution stopped running."""
        if slot is None:
            return True
        if slot.status is not N.INCOMPLETE:
            if replay and slot.status is N.QUEUED:  # the first publish may have been lost
                hop.queued.append(OutboundEvent.node_queued(hop.execution_id, node_id, seq))
                hop.replayed = True
            return True
        ready = self._slot_inputs(hop, node_id, slot)
        if ready is None:
            return True  # still waiting for a value that only a later delivery brings
        data, skipped = ready
        delivered = [pin for pin in hop.graph.linked_pins[node_id] if pin in slot.delivered]
        if hop.deferred is not None and (hop.deferred.node_id, hop.deferred.seq) == (node_id, seq):
            return True  # found again (a static backfill): it is deferred already
        if hop.fold and not skipped and hop.deferred is None and not hop.fresh:
            hop.deferred = ChildQueue(node_id, seq, dumps(data), tuple(delivered))
            return True
        if not self._queue_deferred(hop):  # a second child: the first is queued on its own, as the rest
            return False
        return self._queue(hop, node_id, seq, dumps(data), delivered, skipped)

    def _queue(
        self, hop: Hop, node_id: str, seq: int, inputs_json: str, delivered: list[str], skipped: frozenset[str]
    ) -> bool:
        result = hop.store.queue_slot(hop.execution_id, node_id, seq, inputs_json, delivered, skipped)
        if result.outcome is QueueOutcome.QUEUED:
            hop.queued.append(OutboundEvent.node_queued(hop.execution_id, node_id, seq))
            hop.fresh += 1
            return True
        if result.outcome is QueueOutcome.ALREADY:
            return True
        if result.outcome is QueueOutcome.LIMIT:
            limit = hop.graph.node_execution_limit
            error = (
                f"node execution limit reached: the run queued {limit} node executions "
                f"(node_execution_limit={limit}); a loop that never ends?"
            )
            self._fail_run(hop.store, hop.execution_id, error, "node_limit")
        return False

    @staticmethod
    def _slot_inputs(hop: Hop, node_id: str, slot: NodeRecord) -> tuple[dict[str, Any], frozenset[str]] | None:
        """The slot's inputs (defaults < static values < its own values) and the linked pins it runs without, or
        None while a linked pin lacks a value."""
        graph = hop.graph
        linked = graph.linked_pins[node_id]
        own = {pin: json.loads(value) for pin, value in slot.delivered.items() if pin in linked}
        missing = frozenset(linked - own.keys())
        skipped: frozenset[str] = frozenset()
        if awaited := missing - graph.static_pins[node_id]:  # the Orchestrator may run without its loop pins
            if graph.block(node_id).waits_for(awaited, own):
                return None
            missing, skipped = missing - awaited, awaited
        if missing:
            statics = hop.store.get_pins(hop.execution_id, node_id).statics
            for pin in missing:
                if pin not in statics:
                    return None
                own[pin] = json.loads(statics[pin])
        return {**graph.nodes[node_id].input_default, **own}, skipped
