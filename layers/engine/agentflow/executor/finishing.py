"""How a node execution ends once its block ran and its outputs propagated: finished (and maybe the run), finished
together with the queueing of its only ready child (docs/architecture.md, "Chains"), or TERMINATED under a stop,
keeping its outputs for the resume. Used by executor/node.py."""

from __future__ import annotations

import json
from typing import Any

from agentflow.blocks.sdk import BlockType
from agentflow.clock import iso_at
from agentflow.events import OutboundEvent
from agentflow.executor.base import NodeRunOutcome
from agentflow.executor.gates import NodeGates
from agentflow.executor.inline import InlineChain
from agentflow.executor.propagation import Hop
from agentflow.graph import ValidGraph
from agentflow.statuses import NodeStatus
from agentflow.store import ChildQueue, NodeRecord, RunStatePort

N = NodeStatus


class NodeFinishing(NodeGates):
    def _finish(
        self,
        store: RunStatePort,
        execution_id: str,
        graph: ValidGraph,
        node: NodeRecord,
        attempt: int,
        error: str | None,
        usage: dict[str, Any] | None = None,
        fails_run: bool = False,
        holds_child: bool = False,
        unsaved: tuple[str | None, str | None] | None = None,
        child: ChildQueue | None = None,
        reserved: int = 0,
    ) -> NodeRunOutcome:
        """`holds_child`: this worker holds a child it queued and has not published, so `pending` stays above
        0 and the run cannot be finished yet: no need to read it. `unsaved`: a pure block's outputs and error,
        which the finish writes. `reserved`: the node's reservation, which the finish passes on or gives back."""
        node_id, seq = node.node_id, node.seq
        block = graph.block(node_id)
        target = N.FAILED if error is not None else N.COMPLETED
        unhandled = None
        if error is not None and (fails_run or not graph.error_is_handled(node_id)):
            unhandled = f"node {node_id} ({block.name()}) failed: {error}"
        recorded = None
        if block.block_type is BlockType.OUTPUT and error is None:
            recorded = str(json.loads(node.inputs or "{}").get("name"))
        entry = {"attempt": attempt - node.deferrals, "error": error, "ended_at": iso_at(store.clock())}
        if not store.finish_node(
            execution_id,
            node_id,
            seq,
            attempt,
            target,
            unhandled_error=unhandled,
            recorded_output=recorded,
            attempt_entry=entry,
            llm_usage=None if node.usage_counted else usage,  # counted when the run was stopped under it
            result=unsaved,
            child=child,
            reserved=reserved,
        ):
            return NodeRunOutcome.LOST_LEASE
        if not holds_child:
            self._maybe_finalize(store, execution_id)
        return NodeRunOutcome.FAILED if error is not None else NodeRunOutcome.COMPLETED

    def _finish_terminated(
        self,
        store: RunStatePort,
        execution_id: str,
        node: NodeRecord,
        attempt: int,
        usage: dict[str, Any] | None,
        unsaved: tuple[str | None, str | None] | None = None,
    ) -> NodeRunOutcome:
        """The run was stopped while this node ran: keep its saved outputs, and propagate them on resume. Its LLM
        usage counts now (a stopped run may never resume), and only now."""
        node_id, seq = node.node_id, node.seq
        counted = None if node.usage_counted else usage
        if not store.finish_node(execution_id, node_id, seq, attempt, N.TERMINATED, llm_usage=counted, result=unsaved):
            return NodeRunOutcome.LOST_LEASE
        self._requeue_if_resumed(store, execution_id, node_id, seq)
        return NodeRunOutcome.TERMINATED

    def _finish_folded(
        self,
        store: RunStatePort,
        graph: ValidGraph,
        node: NodeRecord,
        usage: dict[str, Any] | None,
        fails_run: bool,
        error: str | None,
        unsaved: tuple[str | None, str | None] | None,
        hop: Hop,
        chain: InlineChain | None,
    ) -> NodeRunOutcome | None:
        """Finish the node and queue its only ready child in one transaction (docs/architecture.md, "Chains"),
        then publish or keep the child. None when that transaction was refused (a stop, the node limit, a lost
        lease, the child queued by a replay): the caller then goes the unfolded way."""
        child = hop.deferred
        assert child is not None
        ran = child.outputs_json is not None  # an output node this worker ran: carried ended, nothing to run
        outcome = self._finish(
            store, hop.execution_id, graph, node, node.attempts, error, usage, fails_run, not ran, unsaved,
            child, hop.reserved,
        )  # fmt: skip
        if outcome is NodeRunOutcome.LOST_LEASE:
            return None
        hop.deferred, hop.direct = None, None
        event = OutboundEvent.node_queued(hop.execution_id, child.node_id, child.seq)
        hop.fresh += 0 if ran else 1
        if ran:  # nothing left to run or to publish for it
            if chain is not None:
                chain.steps += 1  # a child this worker ran
            self._release(hop, chain)
        elif chain is not None and child.lease_until is not None:  # created claimed for this worker: it runs it
            chain.held, chain.lease_seconds = event, hop.lease_seconds
            chain.claimed = NodeRecord(
                node_id=child.node_id,
                seq=child.seq,
                block_id=str(child.created_by),
                status=N.RUNNING,
                attempts=1,
                inputs=child.inputs_json,
                lease_until=child.lease_until,
                reserved=child.reserved,
            )
            self._release(hop, None)
        else:
            hop.queued.append(event)
            self._release(hop, chain)
        if graph.budget is not None and usage:
            self._check_budget(store, hop.execution_id, graph)
        return outcome
