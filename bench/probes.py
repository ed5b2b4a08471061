"""Instrumentation: every DynamoDB and EventBridge request of a run, and the time of every node execution.

The handler modules build their own engine (and boto3 clients) when the local stack loads them, out of our reach.
Two hooks still see everything without touching the engine:
  - botocore event hooks registered on boto3's default session: clients copy the session's hooks when they are
    created, so every client the stack and its handlers create afterwards reports its requests here;
  - `Engine.run_node` wrapped for the duration of a run: the same class serves the handlers' engines, so each node
    execution's wall time is known, and requests made inside it are attributed to it (per thread).

While recording, a request that asks for ReturnConsumedCapacity=TOTAL is sent with INDEXES instead: the same total
(the engine's Meter reads only that, so its STATS do not change) plus the table/GSI split the cost model needs.
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

import agentflow.store
from agentflow.executor import Engine, NodeRunOutcome

STORE_DIR = str(Path(agentflow.store.__file__).parent)  # the store package: every module of it
EVENT_CHUNK_BYTES = 64 * 1024  # EventBridge bills PutEvents entries per 64 KB chunk
_HOOK_ID = "agentflow-bench"


@dataclass(frozen=True)
class ItemRef:
    """One item a request touched: its action (Get, Update, Put, Query, ...), key, and a Put's own size."""

    action: str
    pk: str
    sk: str  # for a Query: the sort-key prefix it asked for
    put_bytes: int = 0


@dataclass(frozen=True)
class Request:
    service: str  # "dynamodb" | "eventbridge"
    operation: str
    caller: str  # the public Store method that made it, e.g. "deliver"; "-" when not the Store
    items: tuple[ItemRef, ...]
    seconds: float
    in_node: bool  # made inside Engine.run_node (a handler), not by the starter
    units: float | None  # CapacityUnits DynamoDB (Local) reported in all; None when none came back
    index_units: float  # ... of which for global secondary indexes
    error: str | None  # error code, e.g. ConditionalCheckFailedException
    entries: int = 0  # PutEvents entries
    chunks: int = 0  # PutEvents 64 KB chunks


@dataclass(frozen=True)
class NodeRun:
    seconds: float
    dynamodb_seconds: float
    events_seconds: float
    requests: int
    outcome: str


@dataclass
class _Open:
    """A node execution in progress on one thread."""

    dynamodb_seconds: float = 0.0
    events_seconds: float = 0.0
    requests: int = 0


@dataclass
class Recording:
    requests: list[Request] = field(default_factory=list)
    node_runs: list[NodeRun] = field(default_factory=list)


def _caller() -> str:
    """The first public Store method on the stack: names the engine step a request belongs to."""
    frame = inspect.currentframe()
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith(STORE_DIR) and not code.co_name.startswith("_"):
            return code.co_name
        frame = frame.f_back
    return "-"


def _key_of(key: Mapping[str, Any] | None) -> tuple[str, str]:
    key = key or {}
    return str(key.get("PK", {}).get("S", "")), str(key.get("SK", {}).get("S", ""))


def _query_prefix(params: Mapping[str, Any]) -> str:
    # The Store queries `PK = :pk AND begins_with(SK, :prefix)`: the prefix is the value that is not a partition key.
    values = params.get("ExpressionAttributeValues") or {}
    for value in values.values():
        text = value.get("S") if isinstance(value, Mapping) else None
        if isinstance(text, str) and not text.startswith(("EXEC#", "USER#", "IDEMP#")):
            return text
    return ""


def wire_size(value: Mapping[str, Any]) -> int:
    """DynamoDB's size of one attribute value in wire format (the rules its capacity units are computed from)."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = str(data).lstrip("-").replace(".", "").strip("0") or "0"
        return min(21, math.ceil(len(digits) / 2) + 1)
    if kind == "B":
        return len(data) if isinstance(data, bytes | bytearray) else len(str(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + wire_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + wire_size(v) for k, v in data.items())
    if kind in ("SS", "NS", "BS"):
        return sum(wire_size({kind[0]: v}) for v in data)
    return 0


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + wire_size(value) for name, value in item.items())


def _items_of(operation: str, params: Mapping[str, Any]) -> tuple[ItemRef, ...]:
    if operation in ("GetItem", "UpdateItem", "DeleteItem"):
        return (ItemRef(operation.removesuffix("Item"), *_key_of(params.get("Key"))),)
    if operation == "PutItem":
        item = params.get("Item") or {}
        return (ItemRef("Put", *_key_of(item), put_bytes=item_size(item)),)
    if operation == "Query":
        pk = next(
            (
                str(v.get("S"))
                for v in (params.get("ExpressionAttributeValues") or {}).values()
                if isinstance(v, Mapping) and str(v.get("S", "")).startswith(("EXEC#", "USER#"))
            ),
            "",
        )
        return (ItemRef("Query", pk, _query_prefix(params)),)
    if operation == "TransactWriteItems":
        refs = []
        for action in params.get("TransactItems") or []:
            (name, body), *_ = action.items()
            if name == "Put":
                item = body.get("Item") or {}
                refs.append(ItemRef("Put", *_key_of(item), put_bytes=item_size(item)))
            else:
                refs.append(ItemRef(name, *_key_of(body.get("Key"))))
        return tuple(refs)
    if operation == "BatchWriteItem":
        refs = []
        for requests in (params.get("RequestItems") or {}).values():
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"].get("Item") or {}
                    refs.append(ItemRef("Put", *_key_of(item), put_bytes=item_size(item)))
                else:
                    refs.append(ItemRef("Delete", *_key_of(request.get("DeleteRequest", {}).get("Key"))))
        return tuple(refs)
    return ()


def _event_chunks(entry: Mapping[str, Any]) -> int:
    """64 KB chunks EventBridge bills for one PutEvents entry."""
    size = sum(len(str(entry.get(key, "")).encode()) for key in ("Source", "DetailType", "Detail", "Resources"))
    return max(1, math.ceil(size / EVENT_CHUNK_BYTES))


def _units(consumed: Any) -> tuple[float | None, float]:
    """(total units, units of the global secondary indexes) from a ConsumedCapacity answer."""
    if consumed is None:
        return None, 0.0
    entries = consumed if isinstance(consumed, list) else [consumed]
    total = sum(float(e.get("CapacityUnits", 0.0)) for e in entries)
    index = sum(
        float(i.get("CapacityUnits", 0.0)) for e in entries for i in (e.get("GlobalSecondaryIndexes") or {}).values()
    )
    return total, index


class Probe:
    """Collects requests and node executions while `recording()` is open; inert otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._recording: Recording | None = None
        self._installed = False

    # -- botocore hooks

    def install(self) -> None:
        """Register the hooks on boto3's default session; clients created before this are not observed."""
        if self._installed:
            return
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        for service in ("dynamodb", "eventbridge"):
            session.events.register(
                f"provide-client-params.{service}", self._begin, unique_id=f"{_HOOK_ID}-b-{service}"
            )
            session.events.register(f"after-call.{service}", self._end, unique_id=f"{_HOOK_ID}-e-{service}")
            session.events.register(f"after-call-error.{service}", self._fail, unique_id=f"{_HOOK_ID}-f-{service}")
        self._installed = True

    def _begin(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        # Returning anything but None here would replace the request's parameters.
        if self._recording is None:
            return
        if params.get("ReturnConsumedCapacity") == "TOTAL":
            params["ReturnConsumedCapacity"] = "INDEXES"  # botocore's own copy of the call's arguments
        operation = str(model.name)
        entries = params.get("Entries") or []
        chunks = sum(_event_chunks(entry) for entry in entries)
        items = _items_of(operation, params)
        context[_HOOK_ID] = (time.perf_counter(), operation, _caller(), items, len(entries), chunks)

    def _end(
        self, http_response: Any, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        error = None
        if getattr(http_response, "status_code", 200) >= 300:
            error = str(parsed.get("Error", {}).get("Code") or "error")
        self._record(context, *_units(parsed.get("ConsumedCapacity")), error)

    def _fail(self, exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        self._record(context, None, 0.0, type(exception).__name__)

    def _record(self, context: dict[str, Any], units: float | None, index_units: float, error: str | None) -> None:
        started = context.pop(_HOOK_ID, None)
        recording = self._recording
        if started is None or recording is None:
            return
        t0, operation, caller, items, entries, chunks = started
        seconds = time.perf_counter() - t0
        service = "eventbridge" if operation == "PutEvents" else "dynamodb"
        node: _Open | None = getattr(self._local, "node", None)
        if node is not None:
            node.requests += 1
            if service == "dynamodb":
                node.dynamodb_seconds += seconds
            else:
                node.events_seconds += seconds
        request = Request(
            service, operation, caller, items, seconds, node is not None, units, index_units, error, entries, chunks
        )
        with self._lock:
            recording.requests.append(request)

    # -- node executions

    @contextmanager
    def _timing_nodes(self) -> Iterator[None]:
        original = Engine.run_node
        probe = self

        def timed_run_node(
            engine: Engine, execution_id: str, node_id: str, seq: int, *args: Any, **kwargs: Any
        ) -> NodeRunOutcome:
            node = _Open()
            probe._local.node = node
            outcome = "raised"
            t0 = time.perf_counter()
            try:
                result = original(engine, execution_id, node_id, seq, *args, **kwargs)
                outcome = result.value
                return result
            finally:
                seconds = time.perf_counter() - t0
                probe._local.node = None
                run = NodeRun(seconds, node.dynamodb_seconds, node.events_seconds, node.requests, outcome)
                recording = probe._recording
                if recording is not None:
                    with probe._lock:
                        recording.node_runs.append(run)

        with mock.patch.object(Engine, "run_node", timed_run_node):
            yield

    @contextmanager
    def recording(self) -> Iterator[Recording]:
        """Record everything until the block ends; the Recording is complete once it has."""
        self.install()
        recording = Recording()
        with self._timing_nodes():
            self._recording = recording
            try:
                yield recording
            finally:
                self._recording = None
