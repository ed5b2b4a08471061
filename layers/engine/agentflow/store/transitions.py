"""Status writes, the only writers of `status`: every change is one conditional UpdateItem (or one action of a
TransactWriteItems) whose condition is built from the tables in `agentflow.statuses`, and asks for
ReturnValuesOnConditionCheckFailure=ALL_OLD so a lost race hands back the current item with no second read
(docs/architecture.md, "State machines")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agentflow import keys
from agentflow.statuses import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    ExecutionStatus,
    NodeStatus,
    allowed_sources,
    check_transition,
    require_reachable,
)
from agentflow.store.dynamo import Expr, Table, Transition, update_expression
from agentflow.store.records import ExecutionRecord, NodeRecord


class QueueOutcome(StrEnum):
    QUEUED = "queued"  # this caller moved the slot INCOMPLETE -> QUEUED and counted it in
    ALREADY = "already"  # someone else did (or the slot left INCOMPLETE otherwise)
    BLOCKED = "blocked"  # the execution is not RUNNING (stopped, or already ended)
    LIMIT = "limit"  # the node-execution limit is reached


@dataclass(frozen=True)
class QueueResult:
    outcome: QueueOutcome
    node: NodeRecord | None = None
    execution: ExecutionRecord | None = None


def _sources[S: StrEnum](table: Mapping[S, frozenset[S]], target: S, sources: Iterable[S] | None) -> frozenset[S]:
    if sources is None:
        return require_reachable(table, target)
    chosen = frozenset(sources)
    for source in chosen:
        check_transition(table, source, target)
    if not chosen:
        raise ValueError(f"status transition to {target.value} needs at least one source status")
    return chosen


class StatusWrites(Table):
    # -- status transitions: the only writers of `status`

    def _status_update(
        self,
        pk: str,
        sk: str,
        table: Mapping[Any, frozenset[Any]],
        target: StrEnum,
        sources: Iterable[StrEnum] | None,
        *,
        expr: Expr | None = None,
        sets: list[str] | None = None,
        adds: list[str] | None = None,
        removes: list[str] | None = None,
        condition: str | None = None,
        history: bool = False,
    ) -> dict[str, Any]:
        """UpdateItem parameters for one status change, its condition built from the state-machine table."""
        expr = expr or Expr()
        chosen = _sources(table, target, sources)
        now = self._now()
        all_sets = [f"{expr.n('status')} = {expr.v(target.value)}", f"{expr.n('updated_at')} = {expr.v(now)}"]
        if history:
            entry = expr.v([{"status": target.value, "at": now}])
            all_sets.append(f"{expr.n('history')} = list_append({expr.n('history')}, {entry})")
        all_sets.extend(sets or [])
        conditions = [expr.status_in(chosen)]
        if condition:
            conditions.append(f"({condition})")
        return {
            "TableName": self.table,
            "Key": self._key(pk, sk),
            "UpdateExpression": update_expression(all_sets, adds or [], removes or []),
            "ConditionExpression": " AND ".join(conditions),
            **expr.params(),
        }

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
    ) -> Transition[ExecutionRecord]:
        """Move an execution to `target` from `sources` (default: every source the table allows). A run that
        ends leaves the sweeper's index, unless `keep_listed` (its retention is stamped later: `retire`).
        `require_only_reviews`: everything still pending waits for a review (-> REVIEW);
        `require_unreviewed_work`: something pending does not (REVIEW -> RUNNING)."""
        expr = Expr()
        sets = []
        if error is not None:
            sets.append(f"{expr.n('error')} = if_not_exists({expr.n('error')}, {expr.v(error)})")
        if failure is not None:  # what a redrive checks (executor/redrive.py)
            sets.append(f"{expr.n('failure')} = if_not_exists({expr.n('failure')}, {expr.v(failure)})")
        if target in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
            sets.append(f"{expr.n('ended_at')} = {expr.v(self._now())}")
        if target is ExecutionStatus.RUNNING:
            sets.append(f"{expr.n('started_at')} = if_not_exists({expr.n('started_at')}, {expr.v(self._now())})")
        removes = []
        ending = target in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED)
        if keep_listed and ending:
            pass  # stays on the sweeper's index until `retire` stamps its items
        elif ending or target is ExecutionStatus.TERMINATED:
            removes = [expr.n("GSI2PK"), expr.n("GSI2SK")]  # off the sweeper's index while finished or stopped
        else:  # listed once: a key rewritten with every status change would rewrite its index entry too
            pk, sk = expr.n("GSI2PK"), expr.n("GSI2SK")
            sets.append(f"{pk} = if_not_exists({pk}, {expr.v(keys.active_shard(execution_id))})")
            sets.append(f"{sk} = if_not_exists({sk}, {expr.v(f'{self._now()}#{execution_id}')})")
        condition = f"{expr.n('pending')} = {expr.v(0)}" if require_pending_zero else None
        if require_only_reviews or require_unreviewed_work:
            pending, reviewing, zero = expr.n("pending"), expr.n("reviewing"), expr.v(0)
            if require_only_reviews:
                condition = f"{reviewing} > {zero} AND {pending} = {reviewing}"
            else:
                condition = f"(attribute_not_exists({reviewing}) AND {pending} > {zero}) OR {pending} > {reviewing}"
        params = self._status_update(
            keys.execution_pk(execution_id),
            keys.META,
            EXECUTION_TRANSITIONS,
            target,
            sources,
            expr=expr,
            sets=sets,
            removes=removes,
            condition=condition,
            history=True,
        )
        return self._conditional_update(params).typed(ExecutionRecord.from_item)

    def transition_node(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        target: NodeStatus,
        sources: Iterable[NodeStatus] | None = None,
    ) -> Transition[NodeRecord]:
        """A plain node status change (stop, resume). Claims, queueing and finishing have their own methods."""
        if target is NodeStatus.RUNNING:
            raise ValueError("a node enters RUNNING only through claim_node, which holds the lease")
        params = self._status_update(
            keys.execution_pk(execution_id), keys.node_sk(node_id, seq), NODE_TRANSITIONS, target, sources
        )
        return self._conditional_update(params).typed(NodeRecord.from_item)

    def claim_node(
        self, execution_id: str, node_id: str, seq: int, lease_seconds: float, expected_attempt: int | None = None
    ) -> Transition[NodeRecord]:
        """QUEUED -> RUNNING once its retry is due, or take over a RUNNING node whose lease expired; attempts + 1.
        With `expected_attempt` (a delayed retry's message), only that attempt may be claimed: a duplicate or a
        stale message claims nothing."""
        expr = Expr()
        now_ms = int(self.clock() * 1000)
        sources = allowed_sources(NODE_TRANSITIONS, NodeStatus.RUNNING)  # QUEUED, RUNNING (expired lease only)
        fresh = [s for s in sources if s is not NodeStatus.RUNNING]
        due = f"(attribute_not_exists({expr.n('retry_at')}) OR {expr.n('retry_at')} <= {expr.v(now_ms)})"
        lease_guard = (
            f"{expr.n('status')} = {expr.v(NodeStatus.RUNNING.value)} AND {expr.n('lease_until')} < {expr.v(now_ms)}"
        )
        condition = f"(({expr.status_in(fresh)}) AND {due}) OR ({lease_guard})"
        if expected_attempt is not None:
            condition = f"({condition}) AND {expr.n('attempts')} = {expr.v(expected_attempt - 1)}"
        sets = [
            f"{expr.n('status')} = {expr.v(NodeStatus.RUNNING.value)}",
            f"{expr.n('updated_at')} = {expr.v(self._now())}",
            f"{expr.n('lease_until')} = {expr.v(now_ms + int(lease_seconds * 1000))}",
            f"{expr.n('started_at')} = if_not_exists({expr.n('started_at')}, {expr.v(self._now())})",
        ]
        params = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.node_sk(node_id, seq)),
            "UpdateExpression": update_expression(sets, [f"{expr.n('attempts')} {expr.v(1)}"], [expr.n("retry_at")]),
            "ConditionExpression": condition,
            **expr.params(),
        }
        return self._conditional_update(params).typed(NodeRecord.from_item)

    def release_lease(self, execution_id: str, node_id: str, seq: int, attempt: int) -> bool:
        """Expire the lease of a RUNNING node at once (its worker is known to be dead), so the next claim may
        take it over. Only the lease of that attempt: a worker that claimed it since keeps its own."""
        expr = Expr()
        params = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.node_sk(node_id, seq)),
            "UpdateExpression": f"SET {expr.n('lease_until')} = {expr.v(0)}",
            "ConditionExpression": f"{expr.n('status')} = {expr.v(NodeStatus.RUNNING.value)} AND "
            f"{expr.n('attempts')} = {expr.v(attempt)}",
            **expr.params(),
        }
        return self._conditional_update(params).won

    def queue_slot(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        inputs_json: str,
        delivered_pins: Iterable[str],
        skipped_pins: Iterable[str] = (),
    ) -> QueueResult:
        """INCOMPLETE -> QUEUED for a slot whose inputs are complete, counted into `pending` and `node_count`
        in the same transaction, only while the execution is RUNNING and under its node-execution limit.
        `skipped_pins` are linked pins the slot runs without (the Orchestrator's loop pins): the same write moves
        their FIFO counters past this slot, so their next values fill the next slot, not this one."""
        node_update = self._queue_update(execution_id, node_id, seq, inputs_json, delivered_pins)
        ex = Expr()
        exec_update = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": f"ADD {ex.n('pending')} {ex.v(1)}, {ex.n('node_count')} {ex.v(1)}",
            "ConditionExpression": f"{ex.n('status')} = {ex.v(ExecutionStatus.RUNNING.value)} AND "
            f"{ex.n('node_count')} < {ex.n('node_limit')}",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **ex.params(),
        }
        actions: list[dict[str, Any]] = [{"Update": node_update}, {"Update": exec_update}]
        skipped = sorted(set(skipped_pins))
        if skipped:
            actions.append({"Update": self._skip_counters(execution_id, node_id, seq, skipped)})
        failed = self._transact(actions)
        if failed is None:
            return QueueResult(QueueOutcome.QUEUED)
        if len(failed) > 2 and failed[2] is not None:  # a value reached a skipped pin meanwhile: its delivery queues
            return QueueResult(QueueOutcome.ALREADY)
        node_now, exec_item = failed[0], failed[1] if len(failed) > 1 else None
        if node_now is not None:
            return QueueResult(QueueOutcome.ALREADY, node=NodeRecord.from_item(node_now))
        exec_now = None if exec_item is None else ExecutionRecord.from_item(exec_item)
        if exec_now is not None and exec_now.status is not ExecutionStatus.RUNNING:
            return QueueResult(QueueOutcome.BLOCKED, execution=exec_now)
        return QueueResult(QueueOutcome.LIMIT, execution=exec_now)

    def create_slots(
        self, execution_id: str, node_id: str, block_id: str, first: int, inputs: Sequence[str], max_node_count: int
    ) -> bool:
        """Slots `first`, `first + 1`, ... created QUEUED with their inputs and counted in (`pending`, `node_count`)
        in one transaction, while RUNNING with `node_count <= max_node_count`, if none exists (docs/architecture.md,
        "Fan-outs"). False when refused: nothing was written; the caller delivers those values one by one."""
        actions: list[dict[str, Any]] = [
            {"Update": self._create_slot_update(execution_id, node_id, first + offset, block_id, text, None)}
            for offset, text in enumerate(inputs)
        ]
        ex = Expr()
        count = ex.v(len(inputs))
        actions.append(
            {
                "Update": {
                    "TableName": self.table,
                    "Key": self._key(keys.execution_pk(execution_id), keys.META),
                    "UpdateExpression": f"ADD {ex.n('pending')} {count}, {ex.n('node_count')} {count}",
                    "ConditionExpression": f"{ex.n('status')} = {ex.v(ExecutionStatus.RUNNING.value)} AND "
                    f"{ex.n('node_count')} <= {ex.v(max_node_count)}",
                    **ex.params(),
                }
            }
        )
        return self._transact(actions) is None

    def _queue_update(
        self, execution_id: str, node_id: str, seq: int, inputs_json: str, delivered_pins: Iterable[str]
    ) -> dict[str, Any]:
        """The slot's INCOMPLETE -> QUEUED write, one action of a queueing transaction (`queue_slot`, or a
        finish that queues its node's only child: `finish_node`)."""
        expr = Expr()
        removes = [expr.n(keys.PIN_VALUE + pin) for pin in delivered_pins] + [expr.n("filled")]
        node_update = self._status_update(
            keys.execution_pk(execution_id),
            keys.node_sk(node_id, seq),
            NODE_TRANSITIONS,
            NodeStatus.QUEUED,
            [NodeStatus.INCOMPLETE],
            expr=expr,
            sets=[
                f"{expr.n('inputs')} = {expr.v(inputs_json)}",
                f"{expr.n('queued_at')} = {expr.v(self._now())}",
            ],
            removes=removes,
        )
        node_update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return node_update

    def _create_slot_update(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        block_id: str,
        inputs_json: str,
        lease_until: int | None,
        reserved: int = 0,
    ) -> dict[str, Any]:
        """A slot created QUEUED with its inputs by the finish of the node that delivered its only value, or with
        `lease_until` created claimed (RUNNING, attempt 1) by the worker that runs it next (docs/architecture.md,
        "Chains"): its earlier statuses are skipped, not reordered. Only a slot that does not exist yet: its number
        was just taken from the pin's counter (or is its sole source's slot 0)."""
        expr = Expr()
        now = self._now()
        fields: dict[str, Any] = {"status": NodeStatus.QUEUED.value, "node_id": node_id, "seq": seq}
        fields |= {"block_id": block_id, "attempts": 0, "inputs": inputs_json}
        fields |= {"created_at": now, "queued_at": now, "updated_at": now}
        if lease_until is not None:
            fields |= {"status": NodeStatus.RUNNING.value, "attempts": 1, "lease_until": lease_until, "started_at": now}
        if reserved:  # counted in for the chain after it (docs/architecture.md, "Chains")
            fields["reserved"] = reserved
        return {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.node_sk(node_id, seq)),
            "UpdateExpression": update_expression([f"{expr.n(k)} = {expr.v(v)}" for k, v in fields.items()], [], []),
            "ConditionExpression": f"attribute_not_exists({expr.n('PK')})",
            **expr.params(),
        }

    def _skip_counters(self, execution_id: str, node_id: str, seq: int, pins: list[str]) -> dict[str, Any]:
        expr = Expr()
        sets, conditions = [], []
        for pin in pins:
            counter = expr.n(keys.COUNTER + pin)
            sets.append(f"{counter} = {expr.v(seq + 1)}")
            conditions.append(f"(attribute_not_exists({counter}) OR {counter} <= {expr.v(seq)})")
        return {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.pins_sk(node_id)),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **expr.params(),
        }
