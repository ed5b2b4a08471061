"""How a node execution's attempt ends, each a conditional write only the holder of the attempt can make
(docs/architecture.md, "The state machines"): finished (with `pending` - 1 and its LLM usage added to the run, in
one transaction), queued again after a transient failure, or waiting for its sub-agent's run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentflow import keys
from agentflow.statuses import NODE_TRANSITIONS, ExecutionStatus, NodeStatus
from agentflow.store.dynamo import Expr, update_expression
from agentflow.store.records import ended_node_fields
from agentflow.store.transitions import StatusWrites

# (run total on META, node usage field): what finishing a node adds to its run
LLM_USAGE_FIELDS = (
    ("llm_calls", "llm_calls"),
    ("llm_input_tokens", "input_tokens"),
    ("llm_output_tokens", "output_tokens"),
    ("llm_cost_usd", "cost_usd"),
)


def _usage_adds(ex: Expr, llm_usage: Mapping[str, Any] | None) -> list[str]:
    usage = llm_usage or {}
    return [f"{ex.n(total)} {ex.v(usage[name])}" for total, name in LLM_USAGE_FIELDS if usage.get(name)]


def _logged(expr: Expr, entry: Mapping[str, Any]) -> str:
    """SET clause appending one entry to the node's attempt log."""
    log = expr.n("attempt_log")
    return f"{log} = list_append(if_not_exists({log}, {expr.v([])}), {expr.v([dict(entry)])})"


@dataclass(frozen=True)
class ChildQueue:
    """A node's only ready child, queued by the node's own finish (docs/architecture.md, "Chains")."""

    node_id: str
    seq: int
    inputs_json: str
    delivered_pins: tuple[str, ...]
    created_by: str | None = None  # its block id when the finish creates the slot (a direct delivery)
    lease_until: int | None = None  # created claimed (RUNNING, attempt 1) by the worker, until then (epoch ms)
    # What the finish adds to `node_count` for it: 1; 1 + `reserved` when it takes a reservation for the chain's
    # next steps; 0 when the finishing node's reservation pays for it (docs/architecture.md, "Chains")
    counted: int = 1
    reserved: int = 0  # the reservation the created slot holds
    max_node_count: int | None = None  # when it counts more than 1: `node_count` may be at most this before
    # An output node its sender ran, with these outputs: carried ended on the sender's item (docs/architecture.md,
    # "Output nodes run by their sender")
    outputs_json: str | None = None


class NodeEndings(StatusWrites):
    def schedule_retry(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        attempt: int,
        entry: Mapping[str, Any],
        retry_at: float,
        deferral: bool = False,
    ) -> bool:
        """RUNNING -> QUEUED after a transient failure: the attempt is logged and the next one may be claimed from
        `retry_at` (epoch seconds). Only the holder of `attempt` may do it; `pending` still counts the node."""
        expr = Expr()
        params = self._status_update(
            keys.execution_pk(execution_id),
            keys.node_sk(node_id, seq),
            NODE_TRANSITIONS,
            NodeStatus.QUEUED,
            [NodeStatus.RUNNING],
            expr=expr,
            sets=[
                f"{expr.n('retry_at')} = {expr.v(int(retry_at * 1000))}",
                _logged(expr, entry),
            ],
            adds=[f"{expr.n('deferrals')} {expr.v(1)}"] if deferral else None,
            removes=[expr.n("lease_until")],
            condition=f"{expr.n('attempts')} = {expr.v(attempt)}",
        )
        return self._conditional_update(params).won

    def return_reserved(self, execution_id: str, node_id: str, seq: int, attempt: int, reserved: int) -> bool:
        """Give back a node's reservation (`node_count` - it) before its propagation makes children ready one by
        one, so that their queueing meets the node limit exactly (docs/architecture.md, "Chains"). One transaction
        with the node item, only for the holder of `attempt`: a replay gives nothing back twice."""
        nx, ex = Expr(), Expr()
        node = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.node_sk(node_id, seq)),
            "UpdateExpression": f"REMOVE {nx.n('reserved')}",
            "ConditionExpression": f"{nx.n('status')} = {nx.v(NodeStatus.RUNNING.value)} AND "
            f"{nx.n('attempts')} = {nx.v(attempt)} AND {nx.n('reserved')} = {nx.v(reserved)}",
            **nx.params(),
        }
        meta = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": f"ADD {ex.n('node_count')} {ex.v(-reserved)}",
            **ex.params(),
        }
        return self._transact([{"Update": node}, {"Update": meta}]) is None

    def wait_for_child(self, execution_id: str, node_id: str, seq: int, attempt: int, child_id: str) -> bool:
        """RUNNING -> WAITING for a sub-agent node that started its child run."""
        params = self._wait_update(execution_id, node_id, seq, attempt, "child_execution_id", child_id)
        return self._conditional_update(params).won

    def _wait_update(
        self, execution_id: str, node_id: str, seq: int, attempt: int, waits_for: str, value: str
    ) -> dict[str, Any]:
        """RUNNING -> WAITING with what the node waits for (`waits_for` = value): no lease is held meanwhile, and
        the wait is a deferral, not an attempt. Only the holder of `attempt` may do it."""
        expr = Expr()
        return self._status_update(
            keys.execution_pk(execution_id),
            keys.node_sk(node_id, seq),
            NODE_TRANSITIONS,
            NodeStatus.WAITING,
            [NodeStatus.RUNNING],
            expr=expr,
            sets=[f"{expr.n(waits_for)} = {expr.v(value)}"],
            adds=[f"{expr.n('deferrals')} {expr.v(1)}"],
            removes=[expr.n("lease_until")],
            condition=f"{expr.n('attempts')} = {expr.v(attempt)}",
        )

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
    ) -> bool:
        """RUNNING -> COMPLETED/FAILED and `pending` - 1 in one transaction (or RUNNING -> TERMINATED, which
        keeps the node counted in `pending` for resume). Only the holder of the current attempt may finish. The
        node's LLM usage is added to the run's totals in the same write (so it is counted exactly once).
        `result`: outputs (JSON; None: not kept) and error not saved before (a pure block's), written by this
        finish. `recorded_output`: an output node's output name; the finish marks its item as the run's recorded
        output (docs/architecture.md, "Recorded outputs"). `child`: the node's only ready child, queued in the same
        transaction; False then also when that part cannot be done (the caller queues the child on its own and
        finishes again, as without it). `reserved`: the node's reservation, passed to a child it pays for, else
        given back (`node_count` - it); a TERMINATED node keeps it for its resume."""
        expr = Expr()
        node_sets = self._finish_sets(expr, target, attempt_entry, llm_usage, result, recorded_output)
        if child is not None and child.outputs_json is not None:  # an output node it ran: its item carries it
            node_sets.append(f"{expr.n(keys.CARRIED_OUTPUT)} = {expr.v(self._carried_output(child))}")
        node_update = self._status_update(
            keys.execution_pk(execution_id),
            keys.node_sk(node_id, seq),
            NODE_TRANSITIONS,
            target,
            [NodeStatus.RUNNING],
            expr=expr,
            sets=node_sets,
            removes=[expr.n("lease_until")] + ([expr.n("reserved")] if target is not NodeStatus.TERMINATED else []),
            condition=f"{expr.n('attempts')} = {expr.v(attempt)}",
        )
        ex = Expr()
        usage_adds = _usage_adds(ex, llm_usage)
        if target is NodeStatus.TERMINATED:  # stays counted in `pending` for resume
            return self._terminate(execution_id, node_update, ex, usage_adds)
        returned = 0 if child is not None and child.counted == 0 else reserved  # a child that ran counts 1
        exec_update = self._finish_exec_update(execution_id, ex, usage_adds, unhandled_error, child, returned)
        actions: list[dict[str, Any]] = [{"Update": node_update}]
        if exec_update is not None:
            actions.append({"Update": exec_update})
        if child is not None and child.outputs_json is None:
            actions.append({"Update": self._child_update(execution_id, child)})
        return self._transact(actions) is None

    def _terminate(self, execution_id: str, node_update: dict[str, Any], ex: Expr, usage_adds: list[str]) -> bool:
        """A finish as TERMINATED: the node stays counted in `pending`; its LLM usage, if any, counts now."""
        if not usage_adds:
            return self._conditional_update(node_update).won
        usage_update = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": "ADD " + ", ".join(usage_adds),
            **ex.params(),
        }
        return self._transact([{"Update": node_update}, {"Update": usage_update}]) is None

    def _child_update(self, execution_id: str, child: ChildQueue) -> dict[str, Any]:
        """The finish's part that makes its only child ready: the slot created (a direct delivery), or queued."""
        if child.created_by is not None:
            return self._create_slot_update(
                execution_id,
                child.node_id,
                child.seq,
                child.created_by,
                child.inputs_json,
                child.lease_until,
                child.reserved,
            )
        return self._queue_update(execution_id, child.node_id, child.seq, child.inputs_json, child.delivered_pins)

    def _carried_output(self, child: ChildQueue) -> dict[str, Any]:
        """An output node its sender ran, in the layout of a NODE item as its own finish would have left it:
        COMPLETED after one attempt, with its outputs, the run's recorded output (docs/architecture.md, "Output
        nodes run by their sender"). Its sender's item carries it: one item fewer to write and to stamp."""
        now = self._now()
        item: dict[str, Any] = {"node_id": child.node_id, "seq": child.seq, "block_id": child.created_by}
        item |= {"inputs": child.inputs_json, "outputs": child.outputs_json} | ended_node_fields(now)
        name = str(json.loads(child.inputs_json).get("name"))  # as the output node's own finish names it
        return item | {"output_name": name, "recorded_at": now}

    def _finish_exec_update(
        self,
        execution_id: str,
        ex: Expr,
        usage_adds: list[str],
        unhandled_error: str | None,
        child: ChildQueue | None,
        returned: int,
    ) -> dict[str, Any] | None:
        """META's part of a finish: `pending` - 1 and the node's reservation given back; with a child made ready in
        the same write `pending` unchanged (- 1 still for a child that ran: it ended too) and `node_count` + what
        the child counts, under the conditions `queue_slot` has (the run RUNNING, under its node limit). None when
        META has nothing to change: a child its parent's reservation pays for, and no usage or error to add
        (docs/architecture.md, "Chains")."""
        counted = 0 if child is None else child.counted
        adds = list(usage_adds)
        if child is None or child.outputs_json is not None:  # no child left pending: a child that ran ended too
            adds.append(f"{ex.n('pending')} {ex.v(-1)}")
        if counted - returned:
            adds.append(f"{ex.n('node_count')} {ex.v(counted - returned)}")
        if not adds and unhandled_error is None:
            return None
        sets = [f"{ex.n('updated_at')} = {ex.v(self._now())}"]
        if unhandled_error is not None:
            adds.append(f"{ex.n('failed_nodes')} {ex.v(1)}")
            sets.append(f"{ex.n('error')} = if_not_exists({ex.n('error')}, {ex.v(unhandled_error)})")
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": update_expression(sets, adds, []),
        }
        if child is not None and counted:
            assert child.max_node_count is not None or counted == 1
            count = ex.n("node_count")
            under = f"{count} < {ex.n('node_limit')}" if counted == 1 else f"{count} <= {ex.v(child.max_node_count)}"
            update["ConditionExpression"] = f"{ex.n('status')} = {ex.v(ExecutionStatus.RUNNING.value)} AND {under}"
        return {**update, **ex.params()}

    def _finish_sets(
        self,
        expr: Expr,
        target: NodeStatus,
        attempt_entry: Mapping[str, Any] | None,
        llm_usage: Mapping[str, Any] | None,
        result: tuple[str | None, str | None] | None,
        recorded_output: str | None,
    ) -> list[str]:
        """What a finish sets on the node item besides its status."""
        sets = [f"{expr.n('ended_at')} = {expr.v(self._now())}"]
        if recorded_output is not None and target is NodeStatus.COMPLETED:  # the value is its input `value`
            sets.append(f"{expr.n('output_name')} = {expr.v(recorded_output)}")
            sets.append(f"{expr.n('recorded_at')} = {expr.v(self._now())}")
        if result is not None:
            if result[0] is not None:  # None: too big to keep (executor/node.py, KEPT_PURE_OUTPUT_BYTES)
                sets.append(f"{expr.n('outputs')} = {expr.v(result[0])}")
            sets.append(f"{expr.n('error')} = {expr.v(result[1])}")
        if target is NodeStatus.TERMINATED and llm_usage:
            sets.append(f"{expr.n('usage_counted')} = {expr.v(True)}")  # so its later finish adds it no more
        if attempt_entry is not None:
            sets.append(_logged(expr, attempt_entry))
        return sets
