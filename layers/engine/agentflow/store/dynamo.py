"""DynamoDB plumbing for the store: values in and out, expressions with placeholders, metered calls, pagination,
conditional updates and transactions. Nothing here knows the item layout; the store's other modules do.

Every request asks for ConsumedCapacity and records it on a `Meter`, so a run can report what it cost. User
values (inputs, outputs) are stored as JSON strings: DynamoDB has no float type boto3 accepts, and JSON keeps ints
and floats apart exactly as the engine produced them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from agentflow.clock import Clock, iso_at, system_clock
from agentflow.errors import ResourceLimit

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
    invocations: int = 0  # node executor invocations (a chain run inline is one)

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
        self.invocations += other.invocations

    def is_empty(self) -> bool:
        return self.requests == 0 and self.events_published == 0


_READ_OPERATIONS = frozenset({"get_item", "query", "batch_get_item", "scan", "transact_get_items"})


@dataclass(frozen=True)
class Transition[R]:
    """The answer of a conditional write: the new record when won, the current one when lost (None: no item)."""

    won: bool
    item: R | None

    @property
    def status(self) -> str | None:
        """The record's status as text (None when there is no record)."""
        status = getattr(self.item, "status", None)
        return None if status is None else str(status)

    def typed[T](self, build: Callable[[Any], T]) -> Transition[T]:
        return Transition(self.won, None if self.item is None else build(self.item))


class ItemTooLarge(ResourceLimit):
    """A write would make an item exceed DynamoDB's 400 KB: the node must fail with a clear error."""


def _too_large(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationException" and "size" in str(error.get("Message", "")).lower()


class Expr:
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


def update_expression(sets: list[str], adds: list[str], removes: list[str]) -> str:
    parts = []
    if sets:
        parts.append("SET " + ", ".join(sets))
    if adds:
        parts.append("ADD " + ", ".join(adds))
    if removes:
        parts.append("REMOVE " + ", ".join(removes))
    return " ".join(parts)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64)


def dynamodb_client(**options: Any) -> DynamoDBClient:
    """A DynamoDB client with the store's retry and pool settings; `options` as boto3.client takes them (an
    `endpoint_url`, credentials, a region). Without them, boto3's own resolution: the real service in AWS."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG, **options)


class Table:
    """One DynamoDB table, reached through metered calls; the base of the store's parts."""

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

    def with_meter(self, meter: Meter) -> Self:
        """The same store, recording its costs on `meter` (one unit of work)."""
        return type(self)(self.client, self.table, meter, self.clock)

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
        expr = Expr()
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

    def _conditional_update(self, params: dict[str, Any]) -> Transition[Item]:
        try:
            response = self._call(
                "update_item", ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD", **params
            )
        except ClientError as exc:
            if _too_large(exc):
                raise ItemTooLarge(str(exc.response.get("Error", {}).get("Message", ""))) from exc
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return Transition(False, deserialize_item(exc.response.get("Item")))  # type: ignore[arg-type]
        return Transition(True, deserialize_item(response.get("Attributes")))

    def _transact(self, actions: list[dict[str, Any]]) -> list[Item | None] | None:
        """Run a transaction; None when it committed, else the current item of each action (ALL_OLD)."""
        try:
            self._call("transact_write_items", TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            if any(r.get("Code") not in ("None", "ConditionalCheckFailed", None) for r in reasons):
                raise  # a conflict or throttle, not a lost race: let the caller's retry handle it
            return [
                deserialize_item(r.get("Item")) if r.get("Code") == "ConditionalCheckFailed" else None for r in reasons
            ] or [None] * len(actions)
        return None

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self.table: requests}
        for attempt in range(8):
            response = self._call("batch_write_item", RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(0.05 * 2**attempt)
        raise ResourceLimit("DynamoDB left items unprocessed after 8 attempts (throttled)")

    def _index_query(self, index: str, partition: str, attribute: str) -> list[Item]:
        expr = Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": f"{expr.n(attribute)} = {expr.v(partition)}",
            **expr.params(),
        }
        return self._paginate(params)

    def _delete_if(self, pk: str, sk: str, condition: str, expr: Expr | None = None) -> bool:
        """Delete an item if `condition` holds; False when it did not (or there was no item)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(pk, sk),
            "ConditionExpression": condition,
            **(expr.params() if expr else {}),
        }
        try:
            self._call("delete_item", **params)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
