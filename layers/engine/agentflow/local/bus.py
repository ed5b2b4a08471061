"""The local EventBridge: PutEvents over real HTTP, rules from template.yaml, delivery to in-process handlers.

Real boto3 `events` clients publish to it: `endpoint_url=bus.url`, or env `AWS_ENDPOINT_URL_EVENTBRIDGE`
(botocore names the variable after the service id "EventBridge", not "events"), so the engine's publisher runs
unchanged. Each event is matched against the EventBridge rules of the template and delivered, as EventBridge's
event dict, to the rule's function on a worker pool: at least once (`redeliver` adds duplicates in random
order), with retries, then to an in-memory dead-letter list.

No pattern-matching library on PyPI is both small and maintained, so `event_matches` below implements the
EventBridge pattern language: exact values, prefix, suffix, equals-ignore-case, anything-but, exists, numeric,
cidr, wildcard and `$or`, on any field including nested detail fields and arrays.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentflow.local.lambda_runtime import LOCAL_ACCOUNT, FakeLambdaContext, Handler, load_handler
from agentflow.local.template import DEFAULT_BUS, AppTemplate, EventRule, FunctionSpec
from agentflow.runtime import Runtime

__all__ = [
    "ENDPOINT_ENV",
    "MAX_ENTRIES",
    "MAX_ENTRY_BYTES",
    "DeadLetter",
    "Delivery",
    "LocalEventBus",
    "PutEventsError",
    "Target",
    "event_matches",
    "validate_pattern",
]

logger = logging.getLogger(__name__)

# The variable boto3 reads for the events client's endpoint (AWS_ENDPOINT_URL_<service id>; the id is EventBridge).
ENDPOINT_ENV = "AWS_ENDPOINT_URL_EVENTBRIDGE"
MAX_ENTRIES = 10  # entries per PutEvents call
MAX_ENTRY_BYTES = 256 * 1024  # EventBridge's limit on the entries of one PutEvents call
MAX_BODY_BYTES = 4 * 1024 * 1024  # the HTTP layer refuses bodies larger than this outright
_UNDEFINED = object()


# --- event patterns ------------------------------------------------------------------------------------------


class PatternError(ValueError):
    """An event pattern EventBridge would refuse."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, value: Any) -> bool:
    """EventBridge's exact match: same JSON type and value (numbers compare as numbers, True is not 1)."""
    if _is_number(expected):
        return _is_number(value) and float(value) == float(expected)
    if isinstance(expected, bool) or expected is None:
        return value is expected
    return isinstance(value, str) and value == expected


def _text_match(spec: Any, value: Any, test: Callable[[str, str], bool]) -> bool:
    """prefix/suffix: a string, a list of strings, or {"equals-ignore-case": s}."""
    if not isinstance(value, str):
        return False
    if isinstance(spec, Mapping):
        wanted = spec.get("equals-ignore-case")
        return isinstance(wanted, str) and test(value.casefold(), wanted.casefold())
    if isinstance(spec, list):
        return any(isinstance(s, str) and test(value, s) for s in spec)
    return isinstance(spec, str) and test(value, spec)


def _wildcard(spec: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    specs = spec if isinstance(spec, list) else [spec]
    for s in specs:
        regex = ".*".join(re.escape(part) for part in str(s).split("*"))
        if re.fullmatch(regex, value, flags=re.DOTALL):
            return True
    return False


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def _numeric(spec: Sequence[Any], value: Any) -> bool:
    if not _is_number(value):
        return False
    pairs = zip(spec[::2], spec[1::2], strict=True)
    return all(_NUMERIC_OPS[op](float(value), float(bound)) for op, bound in pairs)


def _cidr(spec: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def _anything_but(spec: Any, value: Any) -> bool:
    if isinstance(spec, Mapping):
        (op, arg), *_ = spec.items()
        if op == "prefix":
            return not _text_match(arg, value, str.startswith)
        if op == "suffix":
            return not _text_match(arg, value, str.endswith)
        if op == "equals-ignore-case":
            wanted = arg if isinstance(arg, list) else [arg]
            return not (isinstance(value, str) and value.casefold() in {str(w).casefold() for w in wanted})
        if op == "wildcard":
            return not _wildcard(arg, value)
        raise PatternError(f"unsupported anything-but operator {op!r}")
    excluded = spec if isinstance(spec, list) else [spec]
    return not any(_equal(e, value) for e in excluded)


def _leaf_matches(matcher: Any, value: Any) -> bool:
    """One element of a pattern list against one present value (`exists` is handled by the caller)."""
    if not isinstance(matcher, Mapping):
        return _equal(matcher, value)
    (op, arg), *_ = matcher.items()
    if op == "exists":
        return bool(arg)
    if op == "prefix":
        return _text_match(arg, value, str.startswith)
    if op == "suffix":
        return _text_match(arg, value, str.endswith)
    if op == "equals-ignore-case":
        return isinstance(value, str) and isinstance(arg, str) and value.casefold() == arg.casefold()
    if op == "anything-but":
        return _anything_but(arg, value)
    if op == "numeric":
        return _numeric(arg, value)
    if op == "cidr":
        return _cidr(arg, value)
    if op == "wildcard":
        return _wildcard(arg, value)
    raise PatternError(f"unsupported pattern operator {op!r}")


def _flatten(value: Any, out: list[Any]) -> None:
    # EventBridge matches an array field when any of its elements matches.
    if isinstance(value, list):
        for item in value:
            _flatten(item, out)
    else:
        out.append(value)


def _match_nodes(pattern: Mapping[str, Any], nodes: list[Any]) -> bool:
    """Every key of the pattern must match; `nodes` are the event objects at this level (several under arrays)."""
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_match_nodes(alternative, nodes) for alternative in sub):
                return False
            continue
        found: list[Any] = []
        for node in nodes:
            if isinstance(node, Mapping) and key in node:
                _flatten(node[key], found)
        if isinstance(sub, Mapping):
            if not _match_nodes(sub, [f for f in found if isinstance(f, Mapping)]):
                return False
            continue
        leaves = [f for f in found if not isinstance(f, Mapping)]
        if not leaves:
            # A missing field (or one holding only objects or an empty array) matches only {"exists": false}.
            if not any(isinstance(m, Mapping) and m.get("exists") is False for m in sub):
                return False
            continue
        if not any(_leaf_matches(m, v) for m in sub for v in leaves):
            return False
    return True


def event_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether an EventBridge event (the dict a target receives, `detail` parsed) matches a pattern."""
    return _match_nodes(pattern, [event])


def validate_pattern(pattern: Any, where: str = "pattern") -> None:
    """Raise PatternError for a pattern EventBridge would refuse, so a typo in template.yaml fails at start."""
    if not isinstance(pattern, Mapping):
        raise PatternError(f"{where}: must be an object, not {pattern!r}")
    for key, sub in pattern.items():
        here = f"{where}.{key}"
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError(f"{here}: $or needs a list of at least two patterns")
            for i, alternative in enumerate(sub):
                validate_pattern(alternative, f"{here}[{i}]")
        elif isinstance(sub, Mapping):
            validate_pattern(sub, here)
        elif isinstance(sub, list):
            if not sub:
                raise PatternError(f"{here}: empty arrays are not allowed")
            for matcher in sub:
                _validate_matcher(matcher, here)
        else:
            raise PatternError(f"{here}: must be an object or an array, not {sub!r}")


def _validate_matcher(matcher: Any, where: str) -> None:
    if not isinstance(matcher, Mapping):
        if isinstance(matcher, list):
            raise PatternError(f"{where}: nested arrays are not allowed")
        return
    if len(matcher) != 1:
        raise PatternError(f"{where}: a matcher object holds exactly one operator, not {dict(matcher)!r}")
    (op, arg), *_ = matcher.items()
    if op == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            raise PatternError(f"{where}: numeric takes [op, n] or [op, n, op, n], not {arg!r}")
        for op_, bound in zip(arg[::2], arg[1::2], strict=True):
            if op_ not in _NUMERIC_OPS or not _is_number(bound):
                raise PatternError(f"{where}: bad numeric comparison {op_!r} {bound!r}")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise PatternError(f"{where}: exists takes true or false")
    elif op == "cidr":
        try:
            ipaddress.ip_network(str(arg), strict=False)
        except ValueError:
            raise PatternError(f"{where}: bad cidr {arg!r}") from None
    elif op == "anything-but":
        if isinstance(arg, Mapping) and next(iter(arg), None) not in (
            "prefix",
            "suffix",
            "equals-ignore-case",
            "wildcard",
        ):
            raise PatternError(f"{where}: unsupported anything-but operator {dict(arg)!r}")
    elif op not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        raise PatternError(f"{where}: unsupported operator {op!r}")


# --- the bus -------------------------------------------------------------------------------------------------


class PutEventsError(ValueError):
    """A PutEvents request refused as a whole (EventBridge answers 400 ValidationException)."""

    code = "ValidationException"


@dataclass(frozen=True)
class Target:
    function: FunctionSpec
    rule: EventRule


@dataclass(frozen=True)
class Delivery:
    """One handler invocation, as passed to `on_delivery` (called on the worker thread after each attempt)."""

    function: str  # logical id
    rule: str
    event: dict[str, Any]
    attempt: int  # 1 for the first try of this copy of the event
    copy: int  # 0 for the original delivery, 1..redeliver for the duplicates
    error: BaseException | None
    result: Any = None


@dataclass(frozen=True)
class DeadLetter:
    function: str
    rule: str
    event: dict[str, Any]
    error: str
    attempts: int


@dataclass
class _Job:
    target: Target
    event_id: str
    event_json: str  # the event as JSON: every invocation parses its own copy, as Lambda would
    copy: int


def _parse_time(value: Any) -> str:
    """PutEvents `Time` (epoch seconds from boto3, or ISO text) -> EventBridge's `2024-01-31T12:00:00Z`."""
    if value is None:
        moment = datetime.now(UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry_size(entry: Mapping[str, Any]) -> int:
    """EventBridge's own formula for the size of a PutEvents entry."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if isinstance(entry.get(key), str):
            size += len(entry[key].encode("utf-8"))
    for resource in entry.get("Resources") or []:
        size += len(str(resource).encode("utf-8"))
    return size


def _entry_error(code: str, message: str) -> dict[str, str]:
    return {"ErrorCode": code, "ErrorMessage": message}


class LocalEventBus:
    """An in-process EventBridge for the local stack and the tests.

    `bus_names` maps the template's bus logical ids to the names publishers use (the same mapping given to
    `resolve_environment`, e.g. {"EventBus": "agentflow-local-bus"}); a bus missing from it is known by its
    logical id. Entries for "default" (or no EventBusName) reach the rules that name no bus.
    """

    def __init__(
        self,
        template: AppTemplate,
        *,
        bus_names: Mapping[str, str] | None = None,
        concurrency: int = 8,
        redeliver: int = 0,
        seed: int | None = None,
        max_attempts: int = 3,
        retry_delay: float = 0.05,
        region: str | None = None,
        account: str = LOCAL_ACCOUNT,
        host: str = "127.0.0.1",
        port: int = 0,
        serve_http: bool = True,
        handlers: Mapping[str, Handler] | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        if concurrency < 1 or redeliver < 0 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be >= 1, redeliver >= 0")
        self.template = template
        self.concurrency = concurrency
        self.redeliver = redeliver
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.account = account
        self.on_delivery = on_delivery

        self.targets: list[Target] = []
        for spec, rule in template.event_targets():
            validate_pattern(rule.pattern, f"{spec.logical_id}.{rule.name}")
            self.targets.append(Target(spec, rule))
        # Publisher-facing bus name -> logical id. Every bus resource is known, by its given name or its id.
        names = dict(bus_names or {})
        self._bus_ids: dict[str, str] = {DEFAULT_BUS: DEFAULT_BUS}
        for logical_id in {*template.resources_of_type("AWS::Events::EventBus"), *(t.rule.bus for t in self.targets)}:
            self._bus_ids[names.get(logical_id, logical_id)] = logical_id

        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._random = random.Random(seed)
        self._shuffle = redeliver > 0  # duplicates interleave with other deliveries in random order
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._outstanding = 0  # jobs queued or in flight
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._started = False
        self._closed = False

        self._published = 0
        self._delivered = 0
        self._failed = 0
        self._retried = 0
        self._unmatched = 0
        self._dead_letters: list[DeadLetter] = []

        self._server: _BusHTTPServer | None = None
        self._server_thread: threading.Thread | None = None
        if serve_http:
            self._server = _BusHTTPServer((host, port), _PutEventsHandler, self)

    # -- lifecycle

    @property
    def url(self) -> str:
        """The endpoint for boto3: `endpoint_url=`, or env AWS_ENDPOINT_URL_EVENTBRIDGE (see ENDPOINT_ENV)."""
        if self._server is None:
            raise RuntimeError("this bus was made with serve_http=False")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, runtime: Runtime | None = None) -> LocalEventBus:
        """Load the rules' handlers (a missing or broken one fails here), then serve and deliver. With
        `runtime`, the handlers use it (its events client must point at this bus's `url`)."""
        if self._started:
            return self
        if self._closed:
            raise RuntimeError("a stopped LocalEventBus cannot start again: make a new one")
        for target in self.targets:
            logical_id = target.function.logical_id
            if logical_id not in self._handlers:
                self._handlers[logical_id] = load_handler(target.function, runtime)
        self._stop.clear()
        self._started = True
        for i in range(self.concurrency):
            worker = threading.Thread(target=self._work, name=f"local-bus-worker-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)
        if self._server is not None:
            self._server_thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-bus-http", daemon=True
            )
            self._server_thread.start()
        logger.info("local event bus started", extra={"url": self._server and self.url})
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop delivering (in-flight handlers finish; queued events are dropped), then stop serving HTTP.

        HTTP stays up until the workers are done, so a handler that publishes while it finishes does not fail.
        """
        if not self._started:
            if self._server is not None and not self._closed:
                self._server.server_close()
            self._closed = True
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                logger.warning("local event bus: %s still running a handler after %ss", worker.name, timeout)
        self._workers.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()  # joins the request threads
            if self._server_thread is not None:
                self._server_thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            dropped = len(self._queue)
            self._outstanding -= dropped
            self._queue.clear()
            self._cond.notify_all()
        if dropped:
            logger.warning("local event bus stopped with %d deliveries still queued", dropped)
        self._started = False
        self._closed = True

    def __enter__(self) -> LocalEventBus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight (retries included); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding == 0, timeout)

    # -- counters

    @property
    def published(self) -> int:
        """Entries accepted by PutEvents."""
        return self._published

    @property
    def delivered(self) -> int:
        """Handler invocations that returned (duplicates count)."""
        return self._delivered

    @property
    def failed(self) -> int:
        """Deliveries that failed every attempt and went to `dead_letters`."""
        return self._failed

    @property
    def retried(self) -> int:
        """Handler invocations that raised and were tried again."""
        return self._retried

    @property
    def unmatched(self) -> int:
        """Accepted events that matched no rule (EventBridge drops them too)."""
        return self._unmatched

    @property
    def dead_letters(self) -> list[DeadLetter]:
        with self._cond:
            return list(self._dead_letters)

    # -- publishing

    def targets_for(self, event: Mapping[str, Any], bus: str = DEFAULT_BUS) -> list[Target]:
        """The targets whose rule is on `bus` (a logical id) and matches `event`."""
        return [t for t in self.targets if t.rule.bus == bus and event_matches(t.rule.pattern, event)]

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """EventBridge PutEvents: the same entries and the same answer, without HTTP."""
        if not entries:
            raise PutEventsError("1 validation error detected: Value at 'entries' must have at least 1 element")
        if len(entries) > MAX_ENTRIES:
            raise PutEventsError(
                f"1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_ENTRIES}"
            )
        results: list[dict[str, str]] = []
        jobs: list[_Job] = []
        total_size = 0
        accepted = unmatched = 0
        for entry in entries:
            total_size += _entry_size(entry)
            result, event, bus = self._accept(entry, total_size)
            results.append(result)
            if event is None:
                continue
            accepted += 1
            targets = self.targets_for(event, bus)
            if not targets:
                unmatched += 1
            event_json = json.dumps(event)
            jobs.extend(_Job(t, event["id"], event_json, copy) for t in targets for copy in range(1 + self.redeliver))
        with self._cond:
            self._published += accepted
            self._unmatched += unmatched
            self._queue.extend(jobs)
            self._outstanding += len(jobs)
            self._cond.notify_all()
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def _accept(self, entry: Mapping[str, Any], total_size: int) -> tuple[dict[str, str], dict[str, Any] | None, str]:
        """Validate one entry -> (its result entry, the event to route or None, the bus logical id)."""
        for field in ("Source", "DetailType", "Detail"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                reason = f"{field} is a required argument."
                return _entry_error("InvalidArgument", f"Parameter {field} is not valid. Reason: {reason}"), None, ""
        if total_size > MAX_ENTRY_BYTES:
            message = f"Total size of the entries in the request is over the limit ({MAX_ENTRY_BYTES} bytes)."
            return _entry_error("ValidationException", message), None, ""
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            return _entry_error("MalformedDetail", "Detail is malformed."), None, ""
        bus_name = str(entry.get("EventBusName") or DEFAULT_BUS)
        if bus_name.startswith("arn:"):
            bus_name = bus_name.rsplit("/", 1)[-1]
        bus = self._bus_ids.get(bus_name)
        if bus is None:
            message = f"Event bus {bus_name} does not exist on the local stack (known: {', '.join(self._bus_ids)})."
            return _entry_error("ResourceNotFoundException", message), None, ""
        try:
            event_time = _parse_time(entry.get("Time"))
        except (ValueError, OverflowError, OSError):
            return _entry_error("InvalidArgument", "Parameter Time is not valid."), None, ""
        event_id = str(uuid.uuid4())
        event = {
            "version": "0",
            "id": event_id,
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": self.account,
            "time": event_time,
            "region": self.region,
            "resources": [str(r) for r in entry.get("Resources") or []],
            "detail": detail,
        }
        return {"EventId": event_id}, event, bus

    # -- delivering

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._queue and not self._stop.is_set():
                self._cond.wait()
            if self._stop.is_set():
                return None
            if self._shuffle:
                # Swap a random job to the end and pop it: duplicates land among other deliveries.
                i = self._random.randrange(len(self._queue))
                self._queue[i], self._queue[-1] = self._queue[-1], self._queue[i]
            return self._queue.pop() if self._shuffle else self._queue.pop(0)

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                self._deliver(job)
            except Exception:  # never lose a worker
                logger.exception("local event bus: delivery crashed")
            finally:
                with self._cond:
                    self._outstanding -= 1
                    self._cond.notify_all()

    def _deliver(self, job: _Job) -> None:
        spec, rule = job.target.function, job.target.rule
        handler = self._handlers[spec.logical_id]
        error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            event = json.loads(job.event_json)
            context = FakeLambdaContext.for_function(spec, region=self.region, account=self.account)
            result: Any = None
            try:
                result = handler(event, context)
                error = None
            except Exception as exc:
                error = exc
            self._notify(
                Delivery(spec.logical_id, rule.name, json.loads(job.event_json), attempt, job.copy, error, result)
            )
            if error is None:
                with self._cond:
                    self._delivered += 1
                return
            if attempt < self.max_attempts:
                logger.warning(
                    "local event bus: %s failed on event %s (attempt %d of %d): %r",
                    spec.logical_id,
                    job.event_id,
                    attempt,
                    self.max_attempts,
                    error,
                )
                with self._cond:
                    self._retried += 1
                # Backoff as Lambda's async retries do (shorter); stop() cuts it short and abandons the event.
                if self._stop.wait(self.retry_delay * 2 ** (attempt - 1)):
                    return
        letter = DeadLetter(spec.logical_id, rule.name, json.loads(job.event_json), repr(error), self.max_attempts)
        logger.error(
            "local event bus: %s failed on event %s after %d attempts, dead-lettered: %r",
            spec.logical_id,
            job.event_id,
            self.max_attempts,
            error,
            exc_info=error,
        )
        with self._cond:
            self._failed += 1
            self._dead_letters.append(letter)

    def _notify(self, delivery: Delivery) -> None:
        if self.on_delivery is None:
            return
        try:
            self.on_delivery(delivery)
        except Exception:
            logger.exception("local event bus: on_delivery hook raised")


# --- HTTP: the AWS JSON 1.1 protocol, PutEvents only ---------------------------------------------------------


class _BusHTTPServer(ThreadingHTTPServer):
    request_queue_size = socket.SOMAXCONN  # a burst of publishers must not be refused
    daemon_threads = False  # server_close() joins the request threads, so stop() leaves none behind
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], bus: LocalEventBus) -> None:
        self.bus = bus
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections, whose threads would otherwise wait for another request."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _PutEventsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 expects
    server: _BusHTTPServer

    def _reply(self, status: int, body: Mapping[str, Any], error_type: str | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, error_type: str, message: str, status: int = 400) -> None:
        self._reply(status, {"__type": error_type, "message": message}, error_type)

    def _drain_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            return None
        return self.rfile.read(length)

    def do_POST(self) -> None:
        body = self._drain_body()
        if body is None:
            self._error("ValidationException", f"request body missing a length or over {MAX_BODY_BYTES} bytes")
            return
        target = self.headers.get("X-Amz-Target", "")
        if target != "AWSEvents.PutEvents":
            self._error("UnknownOperationException", f"the local event bus serves only PutEvents, not {target!r}")
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._error("SerializationException", "the request body is not JSON")
            return
        entries = request.get("Entries") if isinstance(request, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            self._error("ValidationException", "Entries must be a list of objects")
            return
        try:
            answer = self.server.bus.put_events(entries)
        except PutEventsError as exc:
            self._error(exc.code, str(exc))
            return
        self._reply(200, answer)

    def _not_supported(self) -> None:
        self._drain_body()
        self._error("UnknownOperationException", "the local event bus answers POST / with AWSEvents.PutEvents only")

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_supported

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("local event bus http: " + format, *args)
