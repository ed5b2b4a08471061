"""A run's items besides status changes: creating an execution, reading its items, recording a block's result,
its costs (the STATS item), the sweeper's queries and repairs, and retention."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from agentflow import keys
from agentflow.clock import epoch_of, iso_at
from agentflow.errors import Conflict
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store.dynamo import Expr, Item, Meter, Table, error_code, serialize, update_expression
from agentflow.store.records import (
    ExecutionRecord,
    NodeRecord,
    RecordedOutput,
    RunSnapshot,
    ended_node_fields,
    in_recorded_order,
    node_executions_in,
)

RETIRE_WORKERS = 8  # parallel writes that stamp a finished run's items with their expiry


class RunItems(Table):
    def create_execution(
        self,
        execution: Item,
        inputs_json: str,
        start_nodes: list[Item],
        idempotency_key: str | None,
    ) -> tuple[str, bool]:
        """Write an INCOMPLETE execution and its starting nodes, QUEUED unless an item says COMPLETED (an input
        run at the start: executor/start_inputs.py); (id, created). With an idempotency key already used, nothing
        is created and the existing execution's id is returned."""
        execution_id = execution["execution_id"]
        pk = keys.execution_pk(execution_id)
        now = self._now()
        self._put_start_items(pk, inputs_json, start_nodes, now)
        queued = sum(1 for n in start_nodes if n.get("status", NodeStatus.QUEUED.value) == NodeStatus.QUEUED.value)
        meta = self._meta_item(execution, queued, len(start_nodes), idempotency_key, now)
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {**self._key(pk, keys.META), **{k: serialize(v) for k, v in meta.items()}},
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        if idempotency_key is None:  # one item: a plain conditional put (a transaction bills each item twice)
            try:
                self._call("put_item", **actions[0]["Put"])
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                raise Conflict(f"execution {execution_id} could not be created") from exc
            return execution_id, True
        actions.append(
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        **self._key(keys.idempotency_pk(execution["user_id"], idempotency_key), keys.IDEMPOTENCY),
                        "execution_id": serialize(execution_id),
                        "created_at": serialize(now),
                    },
                    "ConditionExpression": "attribute_not_exists(PK)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        )
        failed = self._transact(actions)
        if failed is None:
            return execution_id, True
        existing = failed[1] if len(failed) > 1 else None
        if existing is None:
            raise Conflict(f"execution {execution_id} could not be created")
        return str(existing["execution_id"]), False

    def _put_start_items(self, pk: str, inputs_json: str, start_nodes: list[Item], now: str) -> None:
        """Inputs and starting nodes, written before the execution (more than a transaction holds): orphans are
        harmless if the execution's own write then loses. Beside nodes the start ran, queued ones are queued a
        millisecond later, after them, so that reports (ordered by `queued_at`) list the nodes as they ran."""
        ran = any(n.get("status") == NodeStatus.COMPLETED.value for n in start_nodes)
        queued_at = iso_at(epoch_of(now) + 0.001) if ran else now
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(pk, keys.INPUTS), "inputs": serialize(inputs_json), "created_at": serialize(now)},
        )
        for chunk_start in range(0, len(start_nodes), 25):
            chunk = start_nodes[chunk_start : chunk_start + 25]
            requests = [
                {
                    "PutRequest": {
                        "Item": {
                            **self._key(pk, keys.node_sk(n["node_id"], n["seq"])),
                            **{k: serialize(v) for k, v in self._start_item(n, now, queued_at).items()},
                        }
                    }
                }
                for n in chunk
            ]
            self._batch_write(requests)

    @staticmethod
    def _start_item(node: Item, now: str, queued_at: str) -> Item:
        """A starting node's item: QUEUED, or ended after one attempt as its own finish would have left it."""
        if node.get("status") == NodeStatus.COMPLETED.value:
            return ended_node_fields(now) | node
        return {"status": NodeStatus.QUEUED.value, "created_at": now, "queued_at": queued_at, "attempts": 0} | node

    @staticmethod
    def _meta_item(execution: Item, pending: int, node_count: int, idempotency_key: str | None, now: str) -> Item:
        execution_id = execution["execution_id"]
        meta = {
            **execution,
            "status": ExecutionStatus.INCOMPLETE.value,
            "history": [{"status": ExecutionStatus.INCOMPLETE.value, "at": now}],
            "pending": pending,
            "node_count": node_count,
            "failed_nodes": 0,
            "created_at": now,
            "updated_at": now,
            "GSI1PK": keys.executions_by_graph(execution["user_id"], execution["graph_id"]),
            "GSI1SK": f"{now}#{execution_id}",
            "GSI2PK": keys.active_shard(execution_id),
            "GSI2SK": f"{now}#{execution_id}",
        }
        if idempotency_key is not None:  # so that retention expires the key with its run
            meta["idempotency_pk"] = keys.idempotency_pk(execution["user_id"], idempotency_key)
        return meta

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        item = self._get(keys.execution_pk(execution_id), keys.META)
        return None if item is None else ExecutionRecord.from_item(item)

    def find_idempotent_execution(self, user_id: str, idempotency_key: str) -> str | None:
        item = self._get(keys.idempotency_pk(user_id, idempotency_key), keys.IDEMPOTENCY)
        return None if item is None else str(item["execution_id"])

    def get_node(self, execution_id: str, node_id: str, seq: int) -> NodeRecord | None:
        item = self._get(keys.execution_pk(execution_id), keys.node_sk(node_id, seq))
        return None if item is None else NodeRecord.from_item(item)

    def list_nodes(
        self, execution_id: str, node_id: str | None = None, status: NodeStatus | None = None
    ) -> list[NodeRecord]:
        """The node executions of a run (of one node, when given; in one status, when given)."""
        items = self._query(keys.execution_pk(execution_id), keys.node_prefix(node_id), status and status.value)
        return [NodeRecord.from_item(i) for i in items]

    def save_node_result(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        attempt: int,
        outputs_json: str,
        error: str | None,
        stats: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a block's outputs (and its LLM usage) before they propagate, so a retry propagates them instead
        of re-running the block."""
        expr = Expr()
        sets = [f"{expr.n('outputs')} = {expr.v(outputs_json)}", f"{expr.n('error')} = {expr.v(error)}"]
        if stats:
            sets.append(f"{expr.n('stats')} = {expr.v(dict(stats))}")
        params = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.node_sk(node_id, seq)),
            "UpdateExpression": update_expression(sets, [], []),
            "ConditionExpression": f"{expr.n('status')} = {expr.v(NodeStatus.RUNNING.value)} AND "
            f"{expr.n('attempts')} = {expr.v(attempt)}",
            **expr.params(),
        }
        return self._conditional_update(params).won

    def flush_meter(self, execution_id: str) -> None:
        """Add this unit of work's costs to the execution's STATS item, counting this write itself: the item
        stays under 1 KB, so the update costs exactly one request and one write unit."""
        meter = self.meter
        if meter.is_empty():
            return
        expr = Expr()
        adds = [
            f"{expr.n('dynamodb_requests')} {expr.v(meter.requests + 1)}",
            f"{expr.n('dynamodb_read_units')} {expr.v(meter.read_units)}",
            f"{expr.n('dynamodb_write_units')} {expr.v(meter.write_units + 1.0)}",
            f"{expr.n('events_published')} {expr.v(meter.events_published)}",
        ]
        if meter.invocations:
            adds.append(f"{expr.n('lambda_invocations')} {expr.v(meter.invocations)}")
        self.client.update_item(
            TableName=self.table,
            Key=self._key(keys.execution_pk(execution_id), keys.STATS),
            UpdateExpression="ADD " + ", ".join(adds),
            **expr.params(),
        )
        self.meter = Meter()

    def list_outputs(
        self, execution_id: str, output_nodes: Iterable[str], carriers: Iterable[str] = ()
    ) -> list[RecordedOutput]:
        """The run's recorded graph outputs, in the order they were recorded: those its output nodes' items
        (`output_nodes`: their ids) record, those the items of `carriers` (the nodes that may run an output node
        and carry it: `ValidGraph.output_carriers`) carry, and the `OUT#` items of a run recorded before
        (keys.OUTPUT_PREFIX)."""
        pk = keys.execution_pk(execution_id)
        found = [RecordedOutput.from_output_item(i) for i in self._query(pk, keys.OUTPUT_PREFIX)]
        for node_id in sorted(set(output_nodes) | set(carriers)):
            items = (e for i in self._query(pk, keys.node_prefix(node_id)) for e in node_executions_in(i))
            found.extend(r for e in items if (r := RecordedOutput.from_node_item(e)))
        return in_recorded_order(found)

    def load_run(self, execution_id: str) -> RunSnapshot | None:
        """Every item of one run (META, STATS, INPUTS, OUT#, NODE#) in one paginated query; None if no run."""
        by_kind: dict[str, list[Item]] = {}
        for item in self._query(keys.execution_pk(execution_id), None):
            by_kind.setdefault(str(item["SK"]).split("#", 1)[0], []).append(item)
        meta = next(iter(by_kind.get(keys.META, [])), None)
        if meta is None:
            return None
        node_items = [e for i in by_kind.get(keys.node_prefix().rstrip("#"), []) for e in node_executions_in(i)]
        outputs = [RecordedOutput.from_output_item(i) for i in by_kind.get(keys.OUTPUT_PREFIX.rstrip("#"), [])]
        outputs.extend(r for i in node_items if (r := RecordedOutput.from_node_item(i)) is not None)
        inputs = next(iter(by_kind.get(keys.INPUTS, [])), {}).get("inputs")
        return RunSnapshot(
            execution=ExecutionRecord.from_item(meta),
            nodes=[NodeRecord.from_item(i) for i in node_items],
            stats={k: v for k, v in next(iter(by_kind.get(keys.STATS, [])), {}).items() if k not in ("PK", "SK")},
            inputs=None if inputs is None else str(inputs),
            outputs=in_recorded_order(outputs),
        )

    def list_active_executions(self) -> list[ExecutionRecord]:
        """Executions that are not finished or stopped: the sparse GSI2 names them (keys only, eventually
        consistent), then each META item is read consistently."""
        found = [
            k for shard in range(keys.ACTIVE_SHARDS) for k in self._index_query("GSI2", f"ACTIVE#{shard}", "GSI2PK")
        ]
        items = (self._get(str(k["PK"]), str(k["SK"])) for k in found)
        return [ExecutionRecord.from_item(i) for i in items if i is not None and "GSI2PK" in i]

    def retire(self, execution_id: str, expires_at: int | None, idempotency_pk: str | None) -> int:
        """Give every item of a finished run `expires_at` (epoch seconds; DynamoDB TTL deletes them after it),
        the META item last, which also leaves the sweeper's index: a retire cut short is finished by the next
        sweep. `expires_at=None` only takes the run off the index (kept forever). Returns the items written."""
        pk = keys.execution_pk(execution_id)
        written = 1
        if expires_at is not None:
            expr = Expr()
            params: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": f"{expr.n('PK')} = {expr.v(pk)}",
                "ProjectionExpression": f"{expr.n('PK')}, {expr.n('SK')}, {expr.n('expires_at')}",
                "ConsistentRead": True,
                **expr.params(),
            }
            items = self._paginate(params)
            targets = [(pk, str(i["SK"])) for i in items if i["SK"] != keys.META and "expires_at" not in i]
            if idempotency_pk:
                targets.append((idempotency_pk, keys.IDEMPOTENCY))
            self._stamp_expiry(targets, expires_at)
            written += len(targets)
        ex = Expr()
        sets = f"SET {ex.n('expires_at')} = {ex.v(expires_at)} " if expires_at is not None else ""
        self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(pk, keys.META),
            UpdateExpression=f"{sets}REMOVE {ex.n('GSI2PK')}, {ex.n('GSI2SK')}",
            ConditionExpression=f"attribute_exists({ex.n('PK')})",
            **ex.params(),
        )
        return written

    def _stamp_expiry(self, targets: list[tuple[str, str]], expires_at: int) -> None:
        """SET expires_at on each (PK, SK) that still exists, several at a time; costs go on this meter."""
        if not targets:
            return
        meters = [Meter() for _ in range(min(len(targets), RETIRE_WORKERS))]

        def retire_item(index: int) -> None:  # named for the bench, which labels requests by store method
            item_pk, sk = targets[index]
            store = self.with_meter(meters[index % len(meters)])
            ex = Expr()
            try:
                store._call(
                    "update_item",
                    TableName=self.table,
                    Key=self._key(item_pk, sk),
                    UpdateExpression=f"SET {ex.n('expires_at')} = {ex.v(expires_at)}",
                    ConditionExpression=f"attribute_exists({ex.n('PK')})",
                    **ex.params(),
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

        with ThreadPoolExecutor(max_workers=len(meters)) as pool:
            list(pool.map(retire_item, range(len(targets))))
        for meter in meters:
            self.meter.add(meter)

    def repair_pending(self, execution_id: str, seen: int, actual: int) -> bool:
        """Set `pending` to what the node items say, only if nobody changed it since we looked."""
        expr = Expr()
        params = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": f"SET {expr.n('pending')} = {expr.v(actual)}",
            "ConditionExpression": f"{expr.n('pending')} = {expr.v(seen)}",
            **expr.params(),
        }
        return self._conditional_update(params).won
