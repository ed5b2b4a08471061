"""The store: the only code that speaks DynamoDB (DESIGN §3, §4, §5).

Every status change is one conditional UpdateItem (or one action of a TransactWriteItems) whose condition is
built from the tables in `agentflow.statuses`, and asks for ReturnValuesOnConditionCheckFailure=ALL_OLD so a lost
race hands back the current item with no second read. Every request asks for ConsumedCapacity and records it on a
`Meter`, so a run can report what it cost.

User values (inputs, outputs) are stored as JSON strings: DynamoDB has no float type boto3 accepts, and JSON
keeps ints and floats apart exactly as the engine produced them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from agentflow import keys
from agentflow.clock import Clock, iso_at, system_clock
from agentflow.statuses import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    ExecutionStatus,
    NodeStatus,
    allowed_sources,
    check_transition,
    require_reachable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: give callers ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def _dynamo_ready(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list | tuple):
        return [_dynamo_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _dynamo_ready(v) for k, v in value.items()}
    return value


def serialize(value: Any) -> Any:
    return _serializer.serialize(_dynamo_ready(value))


def deserialize_item(item: Mapping[str, Any] | None) -> Item | None:
    if not item:
        return None
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


@dataclass
class Meter:
    """What one unit of work cost in DynamoDB and EventBridge, from the ConsumedCapacity every call returned."""

    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    events_published: int = 0

    def record(self, consumed: Any) -> None:
        self.requests += 1
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        for entry in entries:
            read = entry.get("ReadCapacityUnits")
            write = entry.get("WriteCapacityUnits")
            if read is None and write is None:
                # DynamoDB Local reports only the total; attribute it by the kind of request
                total = float(entry.get("CapacityUnits", 0.0))
                if entry.get("_kind") == "read":
                    self.read_units += total
                else:
                    self.write_units += total
            else:
                self.read_units += float(read or 0.0)
                self.write_units += float(write or 0.0)

    def add(self, other: Meter) -> None:
        self.requests += other.requests
        self.read_units += other.read_units
        self.write_units += other.write_units
        self.events_published += other.events_published

    def is_empty(self) -> bool:
        return self.requests == 0 and self.events_published == 0


RETIRE_WORKERS = 8  # parallel writes that stamp a finished run's items with their expiry

_READ_OPERATIONS = frozenset({"get_item", "query", "batch_get_item", "scan", "transact_get_items"})


@dataclass(frozen=True)
class Transition:
    """The answer of a conditional status change: the new item when won, the current item when lost."""

    won: bool
    item: Item | None

    @property
    def status(self) -> str | None:
        return None if self.item is None else self.item.get("status")


class ItemTooLarge(Exception):
    """A write would make an item exceed DynamoDB's 400 KB: the node must fail with a clear error."""


def _too_large(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "size" in str(error.get("Message", "")).lower()


class QueueOutcome(StrEnum):
    QUEUED = "queued"  # this caller moved the slot INCOMPLETE -> QUEUED and counted it in
    ALREADY = "already"  # someone else did (or the slot left INCOMPLETE otherwise)
    BLOCKED = "blocked"  # the execution is not RUNNING (stopped, or already ended)
    LIMIT = "limit"  # the node-execution limit is reached


@dataclass(frozen=True)
class QueueResult:
    outcome: QueueOutcome
    node: Item | None = None
    execution: Item | None = None


@dataclass(frozen=True)
class Delivery:
    """Where one delivered value landed: its slot, and the slot's node item after (or, on a replay, before) it."""

    slot: int
    replay: bool
    node: Item | None
    counters: dict[str, int] = field(default_factory=dict)


class _Expr:
    """Placeholders for one request's expressions, so attribute names (pin names!) are never spliced in."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._by_name: dict[str, str] = {}

    def n(self, attribute: str) -> str:
        if attribute not in self._by_name:
            placeholder = f"#n{len(self._by_name)}"
            self._by_name[attribute] = placeholder
            self.names[placeholder] = attribute
        return self._by_name[attribute]

    def v(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = serialize(value)
        return placeholder

    def status_in(self, statuses: Iterable[StrEnum]) -> str:
        listed = ", ".join(self.v(s.value) for s in sorted(statuses))
        return f"{self.n('status')} IN ({listed})"

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


def _sources[S: StrEnum](table: Mapping[S, frozenset[S]], target: S, sources: Iterable[S] | None) -> frozenset[S]:
    if sources is None:
        return require_reachable(table, target)
    chosen = frozenset(sources)
    for source in chosen:
        check_transition(table, source, target)
    if not chosen:
        raise ValueError(f"status transition to {target.value} needs at least one source status")
    return chosen


def _update_expression(sets: list[str], adds: list[str], removes: list[str]) -> str:
    parts = []
    if sets:
        parts.append("SET " + ", ".join(sets))
    if adds:
        parts.append("ADD " + ", ".join(adds))
    if removes:
        parts.append("REMOVE " + ", ".join(removes))
    return " ".join(parts)


class Store:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        meter: Meter | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.client = client
        self.table = table_name
        self.meter = meter if meter is not None else Meter()
        self.clock = clock

    def with_meter(self, meter: Meter) -> Store:
        return Store(self.client, self.table, meter, self.clock)

    def _now(self) -> str:
        return iso_at(self.clock())

    # -- plumbing

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("ReturnConsumedCapacity", "TOTAL")
        kind = "read" if operation in _READ_OPERATIONS else "write"
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            consumed = exc.response.get("ConsumedCapacity")
            self.meter.record(self._tag(consumed, kind))
            raise
        self.meter.record(self._tag(response.get("ConsumedCapacity"), kind))
        return response

    @staticmethod
    def _tag(consumed: Any, kind: str) -> Any:
        if isinstance(consumed, list):
            return [{**c, "_kind": kind} for c in consumed]
        if consumed:
            return {**consumed, "_kind": kind}
        return consumed

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"PK": {"S": pk}, "SK": {"S": sk}}

    def _get(self, pk: str, sk: str) -> Item | None:
        response = self._call("get_item", TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True)
        return deserialize_item(response.get("Item"))

    def _query(self, pk: str, sk_prefix: str | None, filter_status: str | None = None) -> list[Item]:
        """Every item of a partition (whose sort key starts with `sk_prefix`, when given), read consistently."""
        expr = _Expr()
        condition = f"{expr.n('PK')} = {expr.v(pk)}"
        if sk_prefix:
            condition += f" AND begins_with({expr.n('SK')}, {expr.v(sk_prefix)})"
        params: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": condition, "ConsistentRead": True}
        if filter_status is not None:
            params["FilterExpression"] = f"{expr.n('status')} = {expr.v(filter_status)}"
        params.update(expr.params())
        return self._paginate(params)

    def _paginate(self, params: dict[str, Any]) -> list[Item]:
        items: list[Item] = []
        while True:
            response = self._call("query", **params)
            items.extend(i for i in (deserialize_item(raw) for raw in response.get("Items", [])) if i)
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _conditional_update(self, params: dict[str, Any]) -> Transition:
        try:
            response = self._call(
                "update_item", ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD", **params
            )
        except ClientError as exc:
            if _too_large(exc):
                raise ItemTooLarge(str(exc.response.get("Error", {}).get("Message", ""))) from exc
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return Transition(False, deserialize_item(exc.response.get("Item")))  # type: ignore[arg-type]
        return Transition(True, deserialize_item(response.get("Attributes")))

    def _transact(self, actions: list[dict[str, Any]]) -> list[Item | None] | None:
        """Run a transaction; None when it committed, else the current item of each action (ALL_OLD)."""
        try:
            self._call("transact_write_items", TransactItems=actions)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            if any(r.get("Code") not in ("None", "ConditionalCheckFailed", None) for r in reasons):
                raise  # a conflict or throttle, not a lost race: let the caller's retry handle it
            return [
                deserialize_item(r.get("Item")) if r.get("Code") == "ConditionalCheckFailed" else None for r in reasons
            ] or [None] * len(actions)
        return None

    # -- status transitions: the only writers of `status`

    def _status_update(
        self,
        pk: str,
        sk: str,
        table: Mapping[Any, frozenset[Any]],
        target: StrEnum,
        sources: Iterable[StrEnum] | None,
        *,
        expr: _Expr | None = None,
        sets: list[str] | None = None,
        adds: list[str] | None = None,
        removes: list[str] | None = None,
        condition: str | None = None,
        history: bool = False,
    ) -> dict[str, Any]:
        """UpdateItem parameters for one status change, its condition built from the state-machine table."""
        expr = expr or _Expr()
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
            "UpdateExpression": _update_expression(all_sets, adds or [], removes or []),
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
        require_pending_zero: bool = False,
        keep_listed: bool = False,
    ) -> Transition:
        """Move an execution to `target` from `sources` (default: every source the table allows). A run that
        ends leaves the sweeper's index, unless `keep_listed` (its retention is stamped later: `retire`)."""
        expr = _Expr()
        sets = []
        if error is not None:
            sets.append(f"{expr.n('error')} = if_not_exists({expr.n('error')}, {expr.v(error)})")
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
        else:
            sets.append(f"{expr.n('GSI2PK')} = {expr.v(keys.active_shard(execution_id))}")
            sets.append(f"{expr.n('GSI2SK')} = {expr.v(f'{self._now()}#{execution_id}')}")
        condition = f"{expr.n('pending')} = {expr.v(0)}" if require_pending_zero else None
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
        return self._conditional_update(params)

    def transition_node(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        target: NodeStatus,
        sources: Iterable[NodeStatus] | None = None,
    ) -> Transition:
        """A plain node status change (stop, resume). Claims, queueing and finishing have their own methods."""
        if target is NodeStatus.RUNNING:
            raise ValueError("a node enters RUNNING only through claim_node, which holds the lease")
        params = self._status_update(
            keys.execution_pk(execution_id), keys.node_sk(node_id, seq), NODE_TRANSITIONS, target, sources
        )
        return self._conditional_update(params)

    def claim_node(self, execution_id: str, node_id: str, seq: int, lease_seconds: float) -> Transition:
        """QUEUED -> RUNNING, or take over a RUNNING node whose lease expired; attempts + 1."""
        expr = _Expr()
        now_ms = int(self.clock() * 1000)
        sources = allowed_sources(NODE_TRANSITIONS, NodeStatus.RUNNING)  # QUEUED, RUNNING (expired lease only)
        fresh = [s for s in sources if s is not NodeStatus.RUNNING]
        lease_guard = (
            f"{expr.n('status')} = {expr.v(NodeStatus.RUNNING.value)} AND {expr.n('lease_until')} < {expr.v(now_ms)}"
        )
        status_expr = expr.status_in(fresh)
        sets = [
            f"{expr.n('status')} = {expr.v(NodeStatus.RUNNING.value)}",
            f"{expr.n('updated_at')} = {expr.v(self._now())}",
            f"{expr.n('lease_until')} = {expr.v(now_ms + int(lease_seconds * 1000))}",
            f"{expr.n('started_at')} = if_not_exists({expr.n('started_at')}, {expr.v(self._now())})",
        ]
        params = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.node_sk(node_id, seq)),
            "UpdateExpression": _update_expression(sets, [f"{expr.n('attempts')} {expr.v(1)}"], []),
            "ConditionExpression": f"({status_expr}) OR ({lease_guard})",
            **expr.params(),
        }
        return self._conditional_update(params)

    def release_lease(self, execution_id: str, node_id: str, seq: int, attempt: int) -> bool:
        """Expire the lease of a RUNNING node at once (its worker is known to be dead), so the next claim may
        take it over. Only the lease of that attempt: a worker that claimed it since keeps its own."""
        expr = _Expr()
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
    ) -> QueueResult:
        """INCOMPLETE -> QUEUED for a slot whose inputs are complete, counted into `pending` and `node_count`
        in the same transaction, only while the execution is RUNNING and under its node-execution limit."""
        expr = _Expr()
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
        ex = _Expr()
        exec_update = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": f"ADD {ex.n('pending')} {ex.v(1)}, {ex.n('node_count')} {ex.v(1)}",
            "ConditionExpression": f"{ex.n('status')} = {ex.v(ExecutionStatus.RUNNING.value)} AND "
            f"{ex.n('node_count')} < {ex.n('node_limit')}",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **ex.params(),
        }
        failed = self._transact([{"Update": node_update}, {"Update": exec_update}])
        if failed is None:
            return QueueResult(QueueOutcome.QUEUED)
        node_now, exec_now = failed[0], failed[1] if len(failed) > 1 else None
        if node_now is not None:
            return QueueResult(QueueOutcome.ALREADY, node=node_now)
        if exec_now is not None and exec_now.get("status") != ExecutionStatus.RUNNING.value:
            return QueueResult(QueueOutcome.BLOCKED, execution=exec_now)
        return QueueResult(QueueOutcome.LIMIT, execution=exec_now)

    def finish_node(
        self,
        execution_id: str,
        node_id: str,
        seq: int,
        attempt: int,
        target: NodeStatus,
        *,
        unhandled_error: str | None = None,
        recorded_output: tuple[str, str] | None = None,
    ) -> bool:
        """RUNNING -> COMPLETED/FAILED and `pending` - 1 in one transaction (or RUNNING -> TERMINATED, which
        keeps the node counted in `pending` for resume). Only the holder of the current attempt may finish."""
        expr = _Expr()
        node_update = self._status_update(
            keys.execution_pk(execution_id),
            keys.node_sk(node_id, seq),
            NODE_TRANSITIONS,
            target,
            [NodeStatus.RUNNING],
            expr=expr,
            sets=[f"{expr.n('ended_at')} = {expr.v(self._now())}"],
            removes=[expr.n("lease_until")],
            condition=f"{expr.n('attempts')} = {expr.v(attempt)}",
        )
        if target is NodeStatus.TERMINATED:
            return self._conditional_update(node_update).won
        ex = _Expr()
        adds = [f"{ex.n('pending')} {ex.v(-1)}"]
        sets = [f"{ex.n('updated_at')} = {ex.v(self._now())}"]
        if unhandled_error is not None:
            adds.append(f"{ex.n('failed_nodes')} {ex.v(1)}")
            sets.append(f"{ex.n('error')} = if_not_exists({ex.n('error')}, {ex.v(unhandled_error)})")
        exec_update = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": _update_expression(sets, adds, []),
            **ex.params(),
        }
        actions: list[dict[str, Any]] = [{"Update": node_update}, {"Update": exec_update}]
        if recorded_output is not None:
            name, value_json = recorded_output
            output = {"name": name, "value": value_json, "recorded_at": self._now(), "node_id": node_id, "seq": seq}
            actions.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **self._key(keys.execution_pk(execution_id), keys.output_sk(node_id, seq)),
                            **{k: serialize(v) for k, v in output.items()},
                        },
                    }
                }
            )
        return self._transact(actions) is None

    # -- executions

    def create_execution(
        self,
        execution: Item,
        inputs_json: str,
        start_nodes: list[Item],
        idempotency_key: str | None,
    ) -> tuple[str, bool]:
        """Write an INCOMPLETE execution and its QUEUED starting nodes; (id, created). With an idempotency key
        already used, nothing is created and the existing execution's id is returned."""
        execution_id = execution["execution_id"]
        pk = keys.execution_pk(execution_id)
        now = self._now()
        # Inputs and starting nodes first (more than a transaction holds): orphans are harmless if we lose below.
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
                            **{k: serialize(v) for k, v in n.items()},
                            "status": serialize(NodeStatus.QUEUED.value),
                            "created_at": serialize(now),
                            "queued_at": serialize(now),
                            "attempts": serialize(0),
                        }
                    }
                }
                for n in chunk
            ]
            self._batch_write(requests)
        meta = {
            **execution,
            "status": ExecutionStatus.INCOMPLETE.value,
            "history": [{"status": ExecutionStatus.INCOMPLETE.value, "at": now}],
            "pending": len(start_nodes),
            "node_count": len(start_nodes),
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
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {**self._key(pk, keys.META), **{k: serialize(v) for k, v in meta.items()}},
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        if idempotency_key is not None:
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
            raise RuntimeError(f"execution {execution_id} could not be created")
        return str(existing["execution_id"]), False

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self.table: requests}
        for attempt in range(8):
            response = self._call("batch_write_item", RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(0.05 * 2**attempt)
        raise RuntimeError("DynamoDB left items unprocessed after 8 attempts")

    def get_execution(self, execution_id: str) -> Item | None:
        return self._get(keys.execution_pk(execution_id), keys.META)

    def find_idempotent_execution(self, user_id: str, idempotency_key: str) -> str | None:
        item = self._get(keys.idempotency_pk(user_id, idempotency_key), keys.IDEMPOTENCY)
        return None if item is None else str(item["execution_id"])

    def get_node(self, execution_id: str, node_id: str, seq: int) -> Item | None:
        return self._get(keys.execution_pk(execution_id), keys.node_sk(node_id, seq))

    def list_nodes(self, execution_id: str, node_id: str | None = None, status: str | None = None) -> list[Item]:
        return self._query(keys.execution_pk(execution_id), keys.node_prefix(node_id), status)

    def save_node_result(
        self, execution_id: str, node_id: str, seq: int, attempt: int, outputs_json: str, error: str | None
    ) -> bool:
        """Record a block's outputs before they propagate, so a retry propagates them instead of re-running."""
        expr = _Expr()
        sets = [f"{expr.n('outputs')} = {expr.v(outputs_json)}", f"{expr.n('error')} = {expr.v(error)}"]
        params = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.node_sk(node_id, seq)),
            "UpdateExpression": _update_expression(sets, [], []),
            "ConditionExpression": f"{expr.n('status')} = {expr.v(NodeStatus.RUNNING.value)} AND "
            f"{expr.n('attempts')} = {expr.v(attempt)}",
            **expr.params(),
        }
        return self._conditional_update(params).won

    # -- propagation

    def deliver(
        self,
        execution_id: str,
        node_id: str,
        block_id: str,
        pin: str,
        delivery_id: str,
        value_json: str,
        static: bool,
    ) -> Delivery:
        """Deliver one value to a pin of a node: the k-th value of the pin fills slot k (FIFO per pin).

        Idempotent: the delivery id and its slot are recorded in the same write that bumps the pin's counter;
        a replay finds its slot in ALL_OLD and rewrites nothing. A static pin also keeps its latest value.
        """
        pk = keys.execution_pk(execution_id)
        expr = _Expr()
        counter, record = expr.n(keys.COUNTER + pin), expr.n(keys.DELIVERY + delivery_id)
        zero = expr.v(0)
        sets = [
            f"{counter} = if_not_exists({counter}, {zero}) + {expr.v(1)}",
            f"{record} = if_not_exists({counter}, {zero})",
        ]
        if static:
            sets.append(f"{expr.n(keys.STATIC + pin)} = {expr.v(value_json)}")
        result = self._conditional_update(
            {
                "TableName": self.table,
                "Key": self._key(pk, keys.pins_sk(node_id)),
                "UpdateExpression": _update_expression(sets, [], []),
                "ConditionExpression": f"attribute_not_exists({record})",
                **expr.params(),
            }
        )
        assert result.item is not None
        slot = int(result.item[keys.DELIVERY + delivery_id])
        counters = {k[len(keys.COUNTER) :]: int(v) for k, v in result.item.items() if k.startswith(keys.COUNTER)}
        replay = not result.won

        # Write the value into its slot, creating the slot's node item on its first value.
        ne = _Expr()
        pin_attr = ne.n(keys.PIN_VALUE + pin)
        status = ne.n("status")
        now = self._now()
        slot_sets = [
            f"{pin_attr} = {ne.v(value_json)}",
            f"{status} = if_not_exists({status}, {ne.v(NodeStatus.INCOMPLETE.value)})",  # creation, not a transition
            f"{ne.n('node_id')} = {ne.v(node_id)}",
            f"{ne.n('seq')} = {ne.v(slot)}",
            f"{ne.n('block_id')} = {ne.v(block_id)}",
            f"{ne.n('attempts')} = if_not_exists({ne.n('attempts')}, {ne.v(0)})",
            f"{ne.n('created_at')} = if_not_exists({ne.n('created_at')}, {ne.v(now)})",
        ]
        slot_result = self._conditional_update(
            {
                "TableName": self.table,
                "Key": self._key(pk, keys.node_sk(node_id, slot)),
                "UpdateExpression": _update_expression(slot_sets, [f"{ne.n('filled')} {ne.v({pin})}"], []),
                "ConditionExpression": f"attribute_not_exists({pin_attr}) AND "
                f"(attribute_not_exists({status}) OR {status} = {ne.v(NodeStatus.INCOMPLETE.value)})",
                **ne.params(),
            }
        )
        return Delivery(slot=slot, replay=replay or not slot_result.won, node=slot_result.item, counters=counters)

    def get_pins(self, execution_id: str, node_id: str) -> Item:
        return self._get(keys.execution_pk(execution_id), keys.pins_sk(node_id)) or {}

    # -- statistics

    def flush_meter(self, execution_id: str) -> None:
        """Add this unit of work's costs to the execution's STATS item, counting this write itself: the item
        stays under 1 KB, so the update costs exactly one request and one write unit."""
        meter = self.meter
        if meter.is_empty():
            return
        expr = _Expr()
        adds = [
            f"{expr.n('dynamodb_requests')} {expr.v(meter.requests + 1)}",
            f"{expr.n('dynamodb_read_units')} {expr.v(meter.read_units)}",
            f"{expr.n('dynamodb_write_units')} {expr.v(meter.write_units + 1.0)}",
            f"{expr.n('events_published')} {expr.v(meter.events_published)}",
        ]
        self.client.update_item(
            TableName=self.table,
            Key=self._key(keys.execution_pk(execution_id), keys.STATS),
            UpdateExpression="ADD " + ", ".join(adds),
            **expr.params(),
        )
        self.meter = Meter()

    def list_execution_items(self, execution_id: str) -> list[Item]:
        """Every item of one execution (META, STATS, INPUTS, OUT#, NODE#, PINS#) in one paginated query."""
        return self._query(keys.execution_pk(execution_id), None)

    def list_active_executions(self) -> list[Item]:
        """Executions that are not finished or stopped: the sparse GSI2 names them (keys only, eventually
        consistent), then each META item is read consistently."""
        found = [
            k for shard in range(keys.ACTIVE_SHARDS) for k in self._index_query("GSI2", f"ACTIVE#{shard}", "GSI2PK")
        ]
        items = (self._get(str(k["PK"]), str(k["SK"])) for k in found)
        return [i for i in items if i is not None and "GSI2PK" in i]

    def retire(self, execution_id: str, expires_at: int | None, idempotency_pk: str | None) -> int:
        """Give every item of a finished run `expires_at` (epoch seconds; DynamoDB TTL deletes them after it),
        the META item last, which also leaves the sweeper's index: a retire cut short is finished by the next
        sweep. `expires_at=None` only takes the run off the index (kept forever). Returns the items written."""
        pk = keys.execution_pk(execution_id)
        if expires_at is None:
            ex = _Expr()
            self._call(
                "update_item",
                TableName=self.table,
                Key=self._key(pk, keys.META),
                UpdateExpression=f"REMOVE {ex.n('GSI2PK')}, {ex.n('GSI2SK')}",
                ConditionExpression=f"attribute_exists({ex.n('PK')})",
                **ex.params(),
            )
            return 1
        expr = _Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": f"{expr.n('PK')} = {expr.v(pk)}",
            "ProjectionExpression": f"{expr.n('PK')}, {expr.n('SK')}, {expr.n('expires_at')}",
            "ConsistentRead": True,
            **expr.params(),
        }
        targets = [(pk, str(i["SK"])) for i in self._paginate(params) if i["SK"] != keys.META and "expires_at" not in i]
        if idempotency_pk:
            targets.append((idempotency_pk, keys.IDEMPOTENCY))
        meters = [Meter() for _ in range(min(len(targets), RETIRE_WORKERS))]

        def stamp(index: int) -> None:
            item_pk, sk = targets[index]
            store = self.with_meter(meters[index % len(meters)])
            ex = _Expr()
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
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

        if targets:
            with ThreadPoolExecutor(max_workers=len(meters)) as pool:
                list(pool.map(stamp, range(len(targets))))
        for meter in meters:
            self.meter.add(meter)
        ex = _Expr()
        self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(pk, keys.META),
            UpdateExpression=f"SET {ex.n('expires_at')} = {ex.v(expires_at)} REMOVE {ex.n('GSI2PK')}, {ex.n('GSI2SK')}",
            ConditionExpression=f"attribute_exists({ex.n('PK')})",
            **ex.params(),
        )
        return len(targets) + 1

    def repair_pending(self, execution_id: str, seen: int, actual: int) -> bool:
        """Set `pending` to what the node items say, only if nobody changed it since we looked."""
        expr = _Expr()
        params = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": f"SET {expr.n('pending')} = {expr.v(actual)}",
            "ConditionExpression": f"{expr.n('pending')} = {expr.v(seen)}",
            **expr.params(),
        }
        return self._conditional_update(params).won

    # -- graphs

    def put_graph_version(self, user_id: str, graph_id: str, name: str, graph_json: str) -> int:
        """Store a new immutable version of a graph and make it the active one; returns its number."""
        pk = keys.user_pk(user_id)
        for _ in range(10):
            head = self._get(pk, keys.graph_sk(graph_id))
            latest = int(head["latest_version"]) if head else 0
            version = latest + 1
            now = self._now()
            head_expr = _Expr()
            head_sets = [
                f"{head_expr.n('latest_version')} = {head_expr.v(version)}",
                f"{head_expr.n('active_version')} = {head_expr.v(version)}",
                f"{head_expr.n('name')} = {head_expr.v(name)}",
                f"{head_expr.n('graph_id')} = {head_expr.v(graph_id)}",
                f"{head_expr.n('updated_at')} = {head_expr.v(now)}",
                f"{head_expr.n('created_at')} = if_not_exists({head_expr.n('created_at')}, {head_expr.v(now)})",
            ]
            condition = (
                f"{head_expr.n('latest_version')} = {head_expr.v(latest)}"
                if head
                else f"attribute_not_exists({head_expr.n('PK')})"
            )
            failed = self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": self._key(pk, keys.graph_sk(graph_id)),
                            "UpdateExpression": _update_expression(head_sets, [], []),
                            "ConditionExpression": condition,
                            **head_expr.params(),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **self._key(pk, keys.graph_version_sk(graph_id, version)),
                                "graph_id": serialize(graph_id),
                                "version": serialize(version),
                                "graph": serialize(graph_json),
                                "created_at": serialize(now),
                            },
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                ]
            )
            if failed is None:
                return version
        raise RuntimeError(f"graph {graph_id}: too many concurrent updates")

    def get_graph_head(self, user_id: str, graph_id: str) -> Item | None:
        return self._get(keys.user_pk(user_id), keys.graph_sk(graph_id))

    def list_graph_heads(self, user_id: str) -> list[Item]:
        items = self._query(keys.user_pk(user_id), "GRAPH#")
        return [i for i in items if "latest_version" in i]  # version items share the prefix

    def list_graph_versions(self, user_id: str, graph_id: str) -> list[Item]:
        return self._query(keys.user_pk(user_id), keys.graph_versions_prefix(graph_id))

    def set_active_version(self, user_id: str, graph_id: str, version: int) -> Transition:
        """Point the graph at an existing version; lost (with the head as it is) when there is no such version."""
        expr = _Expr()
        return self._conditional_update(
            {
                "TableName": self.table,
                "Key": self._key(keys.user_pk(user_id), keys.graph_sk(graph_id)),
                "UpdateExpression": f"SET {expr.n('active_version')} = {expr.v(version)}, "
                f"{expr.n('updated_at')} = {expr.v(self._now())}",
                "ConditionExpression": f"attribute_exists({expr.n('PK')}) AND "
                f"{expr.n('latest_version')} >= {expr.v(version)}",
                **expr.params(),
            }
        )

    def delete_graph(self, user_id: str, graph_id: str) -> bool:
        """Delete a graph: its head goes (every route answers 404 from then on). Its immutable versions stay,
        unreachable through the API, for the executions that refer to them (a run in flight finishes normally).
        False when there was no graph."""
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key=self._key(keys.user_pk(user_id), keys.graph_sk(graph_id)),
                ConditionExpression="attribute_exists(PK)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def list_executions(
        self, user_id: str, graph_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Item], dict[str, Any] | None]:
        """Executions of one graph, newest first, one page at a time (GSI1)."""
        expr = _Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": f"{expr.n('GSI1PK')} = {expr.v(keys.executions_by_graph(user_id, graph_id))}",
            "ScanIndexForward": False,
            "Limit": limit,
            **expr.params(),
        }
        if start_key:
            params["ExclusiveStartKey"] = start_key
        response = self._call("query", **params)
        items = [i for i in (deserialize_item(raw) for raw in response.get("Items", [])) if i]
        return items, response.get("LastEvaluatedKey")

    # -- webhooks

    def put_webhook(self, webhook: Item) -> None:
        now = self._now()
        item = {
            **webhook,
            "created_at": now,
            "GSI1PK": keys.webhooks_by_graph(webhook["user_id"], webhook["graph_id"]),
            "GSI1SK": f"{now}#{webhook['webhook_id']}",
        }
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(keys.webhook_pk(webhook["webhook_id"]), keys.WEBHOOK)}
            | {k: serialize(v) for k, v in item.items()},
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_webhook(self, webhook_id: str) -> Item | None:
        return self._get(keys.webhook_pk(webhook_id), keys.WEBHOOK)

    def list_webhooks(self, user_id: str, graph_id: str) -> list[Item]:
        return self._index_query("GSI1", keys.webhooks_by_graph(user_id, graph_id), "GSI1PK")

    def _owned_webhook_update(
        self, user_id: str, graph_id: str, webhook_id: str, delete: bool, secret: str = ""
    ) -> bool:
        expr = _Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(keys.webhook_pk(webhook_id), keys.WEBHOOK),
            "ConditionExpression": f"{expr.n('user_id')} = {expr.v(user_id)} AND "
            f"{expr.n('graph_id')} = {expr.v(graph_id)}",
        }
        if not delete:
            params["UpdateExpression"] = (
                f"SET {expr.n('secret')} = {expr.v(secret)}, {expr.n('rotated_at')} = {expr.v(self._now())}"
            )
        params.update(expr.params())
        try:
            self._call("delete_item" if delete else "update_item", **params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delete_webhook(self, user_id: str, graph_id: str, webhook_id: str) -> bool:
        """Delete a webhook of this user's graph; False when there is no such webhook (or not theirs)."""
        return self._owned_webhook_update(user_id, graph_id, webhook_id, delete=True)

    def rotate_webhook_secret(self, user_id: str, graph_id: str, webhook_id: str, secret: str) -> bool:
        return self._owned_webhook_update(user_id, graph_id, webhook_id, delete=False, secret=secret)

    # -- schedules

    def put_schedule(self, schedule: Item) -> None:
        now = self._now()
        item = {
            **schedule,
            "enabled": True,
            "created_at": now,
            "GSI1PK": keys.schedules_by_user(schedule["user_id"]),
            "GSI1SK": f"{now}#{schedule['schedule_id']}",
            "GSI2PK": keys.ENABLED_SCHEDULES,
            "GSI2SK": schedule["schedule_id"],
        }
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(keys.schedule_pk(schedule["schedule_id"]), keys.SCHEDULE)}
            | {k: serialize(v) for k, v in item.items() if v is not None},
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_schedule(self, schedule_id: str) -> Item | None:
        return self._get(keys.schedule_pk(schedule_id), keys.SCHEDULE)

    def _index_query(self, index: str, partition: str, attribute: str) -> list[Item]:
        expr = _Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": f"{expr.n(attribute)} = {expr.v(partition)}",
            **expr.params(),
        }
        return self._paginate(params)

    def list_schedules(self, user_id: str) -> list[Item]:
        return self._index_query("GSI1", keys.schedules_by_user(user_id), "GSI1PK")

    def list_enabled_schedules(self) -> list[Item]:
        found = self._index_query("GSI2", keys.ENABLED_SCHEDULES, "GSI2PK")  # keys only
        items = (self._get(str(k["PK"]), str(k["SK"])) for k in found)
        return [i for i in items if i is not None and i.get("enabled", True)]

    def delete_schedule(self, user_id: str, schedule_id: str) -> bool:
        try:
            self._call(
                "delete_item",
                TableName=self.table,
                Key=self._key(keys.schedule_pk(schedule_id), keys.SCHEDULE),
                ConditionExpression="user_id = :u",
                ExpressionAttributeValues={":u": serialize(user_id)},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def disable_schedule(self, schedule_id: str, reason: str) -> None:
        expr = _Expr()
        self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(keys.schedule_pk(schedule_id), keys.SCHEDULE),
            UpdateExpression=f"SET {expr.n('enabled')} = {expr.v(False)}, "
            f"{expr.n('disabled_reason')} = {expr.v(reason)} REMOVE {expr.n('GSI2PK')}, {expr.n('GSI2SK')}",
            ConditionExpression=f"attribute_exists({expr.n('PK')})",
            **expr.params(),
        )

    # -- API keys (only their SHA-256 is stored)

    def put_api_key(self, key_hash: str, user_id: str, name: str) -> None:
        item = {"user_id": user_id, "name": name, "created_at": self._now(), "status": "active"}
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(keys.api_key_pk(key_hash), "KEY"), **{k: serialize(v) for k, v in item.items()}},
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_api_key(self, key_hash: str) -> Item | None:
        return self._get(keys.api_key_pk(key_hash), "KEY")

    def get_graph_version(self, user_id: str, graph_id: str, version: int) -> str | None:
        item = self._get(keys.user_pk(user_id), keys.graph_version_sk(graph_id, version))
        return None if item is None else str(item["graph"])
