"""A redrive's writes (README, "Redrive"): a FAILED run back to RUNNING with its failed node executions back in
the queue, all in one transaction, so a redrive either happened whole or not at all; and the run's items taken off
their expiry first (a finished run was given one; a running run must not expire)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from agentflow import keys
from agentflow.statuses import EXECUTION_TRANSITIONS, NODE_TRANSITIONS, ExecutionStatus, NodeStatus
from agentflow.store.dynamo import Expr, Meter, Transition, error_code
from agentflow.store.endings import NodeEndings
from agentflow.store.records import ExecutionRecord, NodeRecord

MAX_REDRIVEN_NODES = 99  # one transaction holds 100 actions: the run's and one per failed node execution
UNRETIRE_WORKERS = 8


class Redrives(NodeEndings):
    def redrive_execution(self, execution: ExecutionRecord, failed: list[NodeRecord]) -> Transition[ExecutionRecord]:
        """FAILED -> RUNNING and each failed node execution FAILED -> QUEUED, in one transaction. The nodes keep
        their inputs and lose their outputs, error and child run; their earlier attempts stay logged but do not
        count against the retry policy again (their usage was counted when they failed)."""
        assert len(failed) <= MAX_REDRIVEN_NODES
        execution_id = execution.execution_id
        ex = Expr()
        meta = self._status_update(
            keys.execution_pk(execution_id),
            keys.META,
            EXECUTION_TRANSITIONS,
            ExecutionStatus.RUNNING,
            [ExecutionStatus.FAILED],
            expr=ex,
            sets=[
                f"{ex.n('failed_nodes')} = {ex.v(0)}",
                f"{ex.n('GSI2PK')} = {ex.v(keys.active_shard(execution_id))}",
                f"{ex.n('GSI2SK')} = {ex.v(f'{self._now()}#{execution_id}')}",
            ],
            adds=[f"{ex.n('pending')} {ex.v(len(failed))}", f"{ex.n('redrives')} {ex.v(1)}"],
            removes=[ex.n(name) for name in ("error", "failure", "ended_at", "expires_at")],
            history=True,
        )
        meta["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        actions: list[dict[str, Any]] = [{"Update": meta}]
        for node in failed:
            nx = Expr()
            update = self._status_update(
                keys.execution_pk(execution_id),
                keys.node_sk(node.node_id, node.seq),
                NODE_TRANSITIONS,
                NodeStatus.QUEUED,
                [NodeStatus.FAILED],
                expr=nx,
                sets=[
                    f"{nx.n('deferrals')} = {nx.v(node.attempts)}",  # a fresh attempt budget
                    f"{nx.n('log_base')} = {nx.v(len(node.attempt_log))}",  # entries before it were counted
                    f"{nx.n('queued_at')} = {nx.v(self._now())}",
                ],
                removes=[nx.n(name) for name in ("outputs", "error", "ended_at", "child_execution_id", "stats")],
                condition=f"{nx.n('attempts')} = {nx.v(node.attempts)}",
            )
            actions.append({"Update": update})
        failed_items = self._transact(actions)
        current = None if failed_items is None else failed_items[0]
        if current is None:
            current = self._get(keys.execution_pk(execution_id), keys.META)
        return Transition(failed_items is None, None if current is None else ExecutionRecord.from_item(current))

    def unretire(self, execution_id: str) -> int:
        """Take every item of the run off its expiry (DynamoDB TTL would delete a run that runs again); returns
        how many items were changed. Safe to repeat."""
        pk = keys.execution_pk(execution_id)
        expr = Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": f"{expr.n('PK')} = {expr.v(pk)}",
            "FilterExpression": f"attribute_exists({expr.n('expires_at')})",
            "ProjectionExpression": f"{expr.n('PK')}, {expr.n('SK')}",
            "ConsistentRead": True,
            **expr.params(),
        }
        targets = [str(item["SK"]) for item in self._paginate(params)]
        if not targets:
            return 0
        meters = [Meter() for _ in range(min(len(targets), UNRETIRE_WORKERS))]

        def unretire_item(index: int) -> None:  # named for the bench, which labels requests by store method
            store = self.with_meter(meters[index % len(meters)])
            ex = Expr()
            try:
                store._call(
                    "update_item",
                    TableName=self.table,
                    Key=self._key(pk, targets[index]),
                    UpdateExpression=f"REMOVE {ex.n('expires_at')}",
                    ConditionExpression=f"attribute_exists({ex.n('PK')})",
                    **ex.params(),
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

        with ThreadPoolExecutor(max_workers=len(meters)) as pool:
            list(pool.map(unretire_item, range(len(targets))))
        for meter in meters:
            self.meter.add(meter)
        return len(targets)
