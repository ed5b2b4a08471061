"""DynamoDB side of the benchmark: item sizes after a run, the write units AWS would bill, raw request latency.

Why a model at all: DynamoDB Local's ConsumedCapacity is right for single-item requests (1 write unit per started
KB of the item, plus 1 per global secondary index the write touches, 2 when it moves the item in that index; 1 read
unit per 4 KB for a consistent read), but not for:
  - TransactWriteItems: Local reports about 2 units per started KB of the transaction's *total* size; AWS bills
    2 units per started KB of *each* item (two 300-byte items: Local 2, AWS 4); and Local doubles the GSI writes
    a transaction causes, where AWS applies them to the indexes as ordinary writes (they propagate asynchronously,
    outside the transaction: our assumption, halving Local's index figure);
  - failed conditional writes: Local reports nothing, AWS bills the write (the item's size, at least 1 unit).
So the model re-prices exactly those requests from the sizes of the items they touched; everything else is taken
as DynamoDB Local reported it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from bench.probes import ItemRef, Request, item_size

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
KB = 1024

Sizes = dict[tuple[str, str], int]


def quiet_client(endpoint: str) -> DynamoDBClient:
    """A client from a fresh boto3 session: the probe's hooks live on the default session, so this one is unseen
    (its reads are neither timed nor counted as part of a run)."""
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    return session.client(
        "dynamodb",
        endpoint_url=endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=16),
    )


@dataclass(frozen=True)
class LargestItem:
    sort_key: str
    bytes: int
    attributes: int


def kind_of(sort_key: str) -> str:
    """The item family of a sort key: META, STATS, INPUTS, NODE, PINS, OUT, GRAPH, IDEMPOTENCY."""
    return sort_key.split("#", 1)[0] or "?"


def scan_items(client: DynamoDBClient, table: str) -> tuple[Sizes, dict[str, LargestItem]]:
    """Size in bytes of every item of the table by (PK, SK), and the largest item of each kind."""
    sizes: Sizes = {}
    largest: dict[str, LargestItem] = {}
    params: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**params)
        for item in page.get("Items", []):
            sk = str(item["SK"].get("S"))
            size = item_size(item)
            sizes[(str(item["PK"].get("S")), sk)] = size
            kind = kind_of(sk)
            if kind not in largest or size > largest[kind].bytes:
                largest[kind] = LargestItem(sk, size, len(item))
        if "LastEvaluatedKey" not in page:
            return sizes, dict(sorted(largest.items()))
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _write_units(ref: ItemRef, sizes: Sizes) -> int:
    # Sizes come from the table after the run: an item billed earlier may have been smaller then, so this leans high
    # for items that grow (it is exact for items written once).
    size = max(sizes.get((ref.pk, ref.sk), 0), ref.put_bytes)
    return max(1, math.ceil(size / KB))


def modelled_write_units(request: Request, sizes: Sizes) -> float:
    """Write units AWS on-demand would bill for one request (see the module docstring)."""
    if request.service != "dynamodb" or request.operation not in WRITE_OPERATIONS:
        return 0.0
    if request.operation == "TransactWriteItems":
        # Also applied to a cancelled transaction: an assumption (it only matters under races or redelivery).
        table = sum(2 * _write_units(ref, sizes) for ref in request.items)
        return table + request.index_units / 2
    if request.error is None and request.units is not None:
        return request.units  # DynamoDB Local is right here
    return float(sum(_write_units(ref, sizes) for ref in request.items))


def modelled_index_units(request: Request) -> float:
    """The part of `modelled_write_units` that goes to global secondary indexes."""
    if request.service != "dynamodb" or request.operation not in WRITE_OPERATIONS:
        return 0.0
    return request.index_units / 2 if request.operation == "TransactWriteItems" else request.index_units


def read_units(request: Request) -> float:
    if request.service == "dynamodb" and request.operation in READ_OPERATIONS:
        return request.units or 0.0
    return 0.0


def local_write_units(request: Request) -> float:
    if request.service == "dynamodb" and request.operation in WRITE_OPERATIONS:
        return request.units or 0.0
    return 0.0


@dataclass(frozen=True)
class Latency:
    """Median client-side time of one request against the same DynamoDB Local with nothing else running."""

    samples: int
    get_ms: float  # GetItem, consistent
    update_ms: float  # conditional UpdateItem returning ALL_NEW
    transact_ms: float  # TransactWriteItems of two conditional updates

    def for_operation(self, operation: str) -> float:
        if operation in READ_OPERATIONS:
            return self.get_ms
        if operation == "TransactWriteItems":
            return self.transact_ms
        return self.update_ms


def _median_ms(samples: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure_latency(endpoint: str, table: str, samples: int) -> Latency:
    """Time requests shaped like the engine's (same table, same item sizes) one at a time, right after a run."""
    client = quiet_client(endpoint)
    keys = [{"PK": {"S": "BENCH#latency"}, "SK": {"S": f"ITEM#{i}"}} for i in range(2)]
    for key in keys:
        client.put_item(TableName=table, Item={**key, "status": {"S": "RUNNING"}, "n": {"N": "0"}})

    def update(key: dict[str, Any]) -> Any:  # UpdateItem parameters, also one TransactWriteItems action
        return {
            "TableName": table,
            "Key": key,
            "UpdateExpression": "SET #u = :u ADD #n :one",
            "ConditionExpression": "#s IN (:running)",
            "ExpressionAttributeNames": {"#u": "updated_at", "#n": "n", "#s": "status"},
            "ExpressionAttributeValues": {
                ":u": {"S": "2025-01-01T00:00:00.000Z"},
                ":one": {"N": "1"},
                ":running": {"S": "RUNNING"},
            },
        }

    def get() -> object:
        return client.get_item(TableName=table, Key=keys[0], ConsistentRead=True, ReturnConsumedCapacity="TOTAL")

    def put_update() -> object:
        return client.update_item(**update(keys[0]), ReturnValues="ALL_NEW", ReturnConsumedCapacity="TOTAL")

    def transact() -> object:
        return client.transact_write_items(
            TransactItems=[{"Update": update(k)} for k in keys], ReturnConsumedCapacity="TOTAL"
        )

    for warm in (get, put_update, transact):  # connection set-up and first-call costs are not latency
        warm()
    return Latency(samples, _median_ms(samples, get), _median_ms(samples, put_update), _median_ms(samples, transact))
