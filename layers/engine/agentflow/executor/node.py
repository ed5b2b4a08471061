"""One node execution: claim it (a conditional write with a lease), run its block once (or take the outputs an
earlier attempt saved), save the outputs before they propagate, propagate, then finish (`pending` - 1) and, if
nothing is left, finalize the run. A transient failure instead queues the next attempt after its backoff
(docs/architecture.md, "Retries and timeouts")."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any

from agentflow.blocks.execution import ERROR_PIN, BlockRun
from agentflow.blocks.sdk import BlockContext, BlockError, BlockType
from agentflow.clock import iso_at
from agentflow.credentials.models import credential_fields
from agentflow.executor.accounting import node_usage
from agentflow.executor.attempts import final_result, run_with_timeout, scrub_run
from agentflow.executor.base import GraphNotFound, NodeRunOutcome, dumps
from agentflow.executor.finishing import NodeFinishing
from agentflow.executor.gates import SAVE_MARGIN_SECONDS
from agentflow.executor.inline import InlineChain
from agentflow.executor.propagation import Hop
from agentflow.graph import ValidGraph
from agentflow.retries import ResolvedPolicy, RetryMessage
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, ItemTooLarge, NodeRecord, RunStatePort

logger = logging.getLogger(__name__)

E = ExecutionStatus
N = NodeStatus
# A pure block's outputs bigger than this are not kept on its node item (a fan-out's list of 10,000 items would
# fill most of it, and the item is written again by every later change): its children have them, and its inputs
# give them again (docs/architecture.md, "Pure blocks").
KEPT_PURE_OUTPUT_BYTES = 64_000


@dataclass(frozen=True)
class NodeResult:
    """How a node execution ends: its outputs (the last pair is the error's when it failed), its LLM usage, and
    whether its failure ends the run whatever its error pin says (a used-up budget)."""

    outputs: list[Any]
    error: str | None
    usage: dict[str, Any] | None = None
    fails_run: bool = False
    saved: bool = True  # False: a pure block's, written only by the node's finish (docs/architecture.md)


class NodeRunning(NodeFinishing):
    def run_node(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        lease_seconds: float | None = None,
        attempt: int | None = None,
        chain: InlineChain | None = None,
    ) -> NodeRunOutcome:
        """Handle one NodeExecutionQueued event (or, with `attempt`, one delayed retry). Safe under duplicate and
        concurrent delivery: each attempt number runs at most once. With a `chain` (the time the worker may still
        hold a lease), the worker runs a chain of single children itself (executor/inline.py); `chain.steps`
        then counts them. The outcome returned is the first node's."""
        if chain is not None and (attempt is not None or not self.settings.inline_chains):
            chain = None
        with self._unit(execution_id) as unit:
            store = unit.store
            store.meter.invocations += 1
            try:
                outcome = self._run_node(store, execution_id, node_id, seq, lease_seconds, attempt, chain)
                while chain is not None and (held := chain.take()) is not None:
                    event, claimed, lease = held
                    child, child_seq = str(event.detail["node_id"]), int(event.detail["seq"])
                    lease = lease or chain.time_left()
                    self._run_node(store, execution_id, child, child_seq, lease, None, chain, claimed)
            finally:
                if chain is not None and chain.held is not None:  # a failure between holding and running it
                    if chain.claimed is not None:  # its claim goes, so that the event's receiver takes it over
                        store.release_lease(execution_id, chain.claimed.node_id, chain.claimed.seq, 1)
                    self._publish(store, [chain.held])
            return outcome

    def _run_node(
        self,
        store: RunStatePort,
        execution_id: str,
        node_id: str,
        seq: int,
        lease_seconds: float | None,
        expected_attempt: int | None,
        chain: InlineChain | None = None,
        claimed: NodeRecord | None = None,
    ) -> NodeRunOutcome:
        """`claimed`: the node was created claimed for this worker (executor/inline.py), which skips the claim."""
        execution = store.get_execution(execution_id)
        if execution is None:
            logger.warning("event for unknown execution %s", execution_id)
            return NodeRunOutcome.MISSING
        waiting = N.QUEUED if claimed is None else N.RUNNING  # the node's status while it waits to run
        if self._past_deadline(store, execution, node_id, seq, waiting):
            return NodeRunOutcome.TERMINATED
        if not self._execution_runs(store, execution, node_id, seq, waiting):
            return NodeRunOutcome.TERMINATED
        lease = lease_seconds or self.settings.default_lease_seconds
        node = claimed
        if node is None:
            claim = store.claim_node(execution_id, node_id, seq, lease, expected_attempt)
            if not claim.won:
                return self._not_claimed(store, execution_id, claim.item, expected_attempt)
            node = claim.item
        assert node is not None
        try:
            graph = self.load_graph(execution.user_id, execution.graph_id, execution.graph_version, store)
        except GraphNotFound as exc:  # cannot happen through the API (versions outlive their graph); never hang
            logger.error("execution %s: %s", execution_id, exc)
            self._fail_run(store, execution_id, str(exc), "graph_missing")
            return NodeRunOutcome.FAILED
        policy = graph.retry_policy(node_id, self.settings.retry_policy)
        result = self._result(store, execution, graph, node, policy, lease)
        if isinstance(result, NodeRunOutcome):
            return result
        return self._conclude(store, execution, graph, node, result, chain)

    def _result(
        self,
        store: RunStatePort,
        execution: ExecutionRecord,
        graph: ValidGraph,
        node: NodeRecord,
        policy: ResolvedPolicy,
        lease: float,
    ) -> NodeResult | NodeRunOutcome:
        """What the claimed node execution ends with, saved before it propagates; or, when it does not end now,
        why (a retry, a deferral, a sub-agent to wait for, a lost lease)."""
        if node.outputs is not None:  # an earlier attempt ran the block and died before finishing: don't rerun
            outputs = [tuple(pair) for pair in json.loads(node.outputs)]
            return NodeResult(outputs, node.error, dict(node.stats) or None)
        attempt = node.attempts
        block_type = graph.block(node.node_id).block_type
        if block_type in (BlockType.AGENT, BlockType.HUMAN_IN_THE_LOOP):  # the engine runs these itself
            waited = (self._agent_run if block_type is BlockType.AGENT else self._review_run)(
                store, execution, graph, node
            )
            if waited is None:
                return NodeRunOutcome.WAITING
            run = waited
        else:
            run = self._run_block(store, execution, graph, node, policy, lease)
        if run.deferred_seconds is not None and self.retry_queue is not None:
            return self._retry_later(store, execution.execution_id, node, policy, run)
        if run.retryable and attempt - node.deferrals < policy.max_attempts and self.retry_queue is not None:
            return self._retry_later(store, execution.execution_id, node, policy, run)
        outputs, error = final_result(run, attempt - node.deferrals, policy)
        result = NodeResult(outputs, error, node_usage(node, run), run.fails_run)
        if graph.block(node.node_id).pure and result.usage is None:  # a crash runs it again, to the same outputs
            return dataclasses.replace(result, saved=False)
        saved = store.save_node_result(
            execution.execution_id, node.node_id, node.seq, attempt, dumps(outputs), error, result.usage
        )
        return result if saved else NodeRunOutcome.LOST_LEASE

    def _conclude(
        self,
        store: RunStatePort,
        execution: ExecutionRecord,
        graph: ValidGraph,
        node: NodeRecord,
        result: NodeResult,
        chain: InlineChain | None = None,
    ) -> NodeRunOutcome:
        """Propagate the result, then finish the node (and maybe the run)."""
        execution_id, attempt = execution.execution_id, node.attempts
        error, usage, fails_run = result.error, result.usage, result.fails_run
        unsaved = None
        if not result.saved:
            outputs_json = dumps(result.outputs)
            unsaved = (outputs_json if len(outputs_json.encode()) <= KEPT_PURE_OUTPUT_BYTES else None, error)
        if (over := self._over_budget(execution, graph, usage, error if fails_run else None)) is not None:
            # before any child is queued, so no further LLM call starts; then the node finishes, its usage counted
            self._fail_run(store, execution_id, over, "budget")
            return self._finish(
                store, execution_id, graph, node, attempt, error, usage, fails_run, unsaved=unsaved,
                reserved=node.reserved,
            )  # fmt: skip
        hop = Hop(
            store, execution_id, graph, fold=True, first_attempt=attempt == 1, attempt=attempt,
            reserved=node.reserved, alone=execution.pending == 1, node_count=execution.node_count,
            failed=error is not None,
        )  # fmt: skip
        try:
            propagated = self._propagate(hop, node.node_id, node.seq, result.outputs, chain)
        except ItemTooLarge as exc:
            # e.g. a sink that received more values than one item can record: fail loudly, never silently
            error = f"a value could not be delivered: a DynamoDB item would exceed 400 KB ({exc})"
            propagated = self._queue_deferred(hop)
            self._release(hop, None)
        if propagated and hop.deferred is not None:
            folded = self._finish_folded(store, graph, node, result.usage, result.fails_run, error, unsaved, hop, chain)
            if folded is not None:
                return folded
            propagated = self._queue_deferred(hop)  # the fold could not be done: as without it
            self._release(hop, chain)
        if not propagated:
            return self._finish_terminated(store, execution_id, node, attempt, usage, unsaved)
        holds_child = chain is not None and chain.held is not None
        outcome = self._finish(
            store, execution_id, graph, node, attempt, error, usage, fails_run, holds_child, unsaved,
            reserved=hop.reserved,
        )  # fmt: skip
        if outcome is not NodeRunOutcome.LOST_LEASE and graph.budget is not None and usage:
            self._check_budget(store, execution_id, graph)
        return outcome

    def _agent_run(
        self, store: RunStatePort, execution: ExecutionRecord, graph: ValidGraph, node: NodeRecord
    ) -> BlockRun | None:
        """A sub-agent node's run (agentflow.executor.subagents); None while it waits for its child."""
        raise NotImplementedError

    def _review_run(
        self, store: RunStatePort, execution: ExecutionRecord, graph: ValidGraph, node: NodeRecord
    ) -> BlockRun | None:
        """A review node's run (agentflow.executor.reviews); None while it waits for the decision."""
        raise NotImplementedError

    def _run_block(
        self,
        store: RunStatePort,
        execution: ExecutionRecord,
        graph: ValidGraph,
        node: NodeRecord,
        policy: ResolvedPolicy,
        lease: float,
    ) -> BlockRun:
        """The block's run (credentials resolved, under its time limit, secrets scrubbed from what it returns), or
        an error run when it may not run or its outputs are too big."""
        node_id, attempt = node.node_id, node.attempts - node.deferrals  # deferrals are not attempts
        if attempt > policy.max_attempts:
            error = (
                f"gave up after {attempt - 1} attempts: the worker stopped before finishing "
                "(timeout or crash; the lease expired)"
            )
            return BlockRun([(ERROR_PIN, error)], error)
        block = graph.block(node_id)
        inputs = json.loads(node.inputs or "{}")
        try:
            credentials = self._credentials(execution.user_id, block, inputs)
        except BlockError as exc:
            return BlockRun([(ERROR_PIN, str(exc))], str(exc))
        limit = self._block_limit(graph, node_id)
        timeout = min(limit, max(lease - SAVE_MARGIN_SECONDS, 0.5))  # the lease must outlive the block
        llm = self._llm_runtime(execution, graph, timeout) if block.uses_llm else None
        context = BlockContext(
            user_id=execution.user_id,
            graph_id=execution.graph_id,
            graph_version=execution.graph_version,
            execution_id=execution.execution_id,
            node_id=node_id,
            node_exec_id=f"{node_id}#{node.seq}",
            attempt=attempt,
            deferrals=node.deferrals,
            max_attempts=policy.max_attempts,
            credentials=credentials,
            http=self.settings.http,
            clock=self.store.clock,
            values=store,  # the unit's store: the persistence blocks' requests count in the run's costs
            llm=llm,
            graph=graph,
        )
        run = run_with_timeout(block, inputs, context, timeout)
        if llm is not None and not llm.usage.is_empty():
            run = dataclasses.replace(run, usage=llm.usage.to_dict())
        run = scrub_run(run, [secret for c in credentials.values() for secret in c.secrets()])
        if (too_big := self._oversized(block.pure, node, run)) is not None:
            return BlockRun([(ERROR_PIN, too_big)], too_big)
        return run

    def _oversized(self, pure: bool, node: NodeRecord, run: BlockRun) -> str | None:
        """Why a run's outputs cannot be kept, if they cannot: a pure block's each value must fit its child's slot
        (its outputs share no item with its inputs); any other's inputs and outputs share its node item."""
        if pure:
            size = max((len(dumps(value).encode()) for _, value in run.outputs), default=0)
            what = "an output value is"
        else:
            size = len(dumps(run.outputs).encode()) + len((node.inputs or "").encode())
            what = "inputs and outputs are"
        if size <= self.settings.max_value_bytes:
            return None
        return (
            f"{what} {size} bytes; a node's inputs and outputs together are limited to "
            f"{self.settings.max_value_bytes} bytes (one DynamoDB item)"
        )

    def _credentials(self, user_id: str, block: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        if not credential_fields(block):
            return {}
        if self.credentials is None:
            raise BlockError(f"{block.name()} needs credentials, and this deployment has no credentials store")
        return self.credentials.resolve_node(user_id, block, inputs)

    def _retry_later(
        self, store: RunStatePort, execution_id: str, node: NodeRecord, policy: ResolvedPolicy, run: BlockRun
    ) -> NodeRunOutcome:
        """RUNNING -> QUEUED with the attempt logged, then the delayed message that runs the next one (after the
        backoff, or the wait a block deferred itself for). A worker that dies between the two leaves a QUEUED node
        the sweeper re-publishes once it is due. A wait longer than one message can carry (15 minutes) arrives
        early, and `_not_claimed` sends it on for the time left."""
        assert self.retry_queue is not None
        now, claims = store.clock(), node.attempts
        deferral = run.deferred_seconds is not None
        delay = run.deferred_seconds if run.deferred_seconds is not None else 0.0
        if not deferral:
            delay = policy.delay(claims - node.deferrals, run.retry_after, self.rng)
        entry: dict[str, Any] = {"attempt": claims - node.deferrals, "error": run.error, "ended_at": iso_at(now)}
        if run.usage:  # what the attempt's LLM calls used counts, though the attempt failed
            entry["llm"] = run.usage
        entry["deferred_seconds" if deferral else "retry_in_seconds"] = round(delay, 3)
        if not store.schedule_retry(execution_id, node.node_id, node.seq, claims, entry, now + delay, deferral):
            return NodeRunOutcome.LOST_LEASE
        self.retry_queue.send(RetryMessage(execution_id, node.node_id, node.seq, claims + 1), delay)
        return NodeRunOutcome.DEFERRED if deferral else NodeRunOutcome.RETRYING
