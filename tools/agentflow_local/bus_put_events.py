"""PutEvents for the local event bus: entries checked and turned into EventBridge events, and the HTTP endpoint.

The endpoint speaks the AWS JSON 1.1 protocol for `AWSEvents.PutEvents` only, so a real boto3 `events` client
can publish to it. The answers (whole-request refusals, per-entry error codes) are EventBridge's.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from agentflow.errors import InvalidInput
from agentflow_local.json_endpoint import KeepAliveServer, read_limited_body
from agentflow_local.template import DEFAULT_BUS

__all__ = ["MAX_BODY_BYTES", "MAX_ENTRIES", "MAX_ENTRY_BYTES", "PutEventsError"]

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10  # entries per PutEvents call
MAX_ENTRY_BYTES = 256 * 1024  # EventBridge's limit on the entries of one PutEvents call
MAX_BODY_BYTES = 4 * 1024 * 1024  # the HTTP layer refuses bodies larger than this outright


class PutEventsError(InvalidInput):
    """A PutEvents request refused as a whole (EventBridge answers 400 ValidationException)."""

    code = "ValidationException"


# --- entries -> events ---------------------------------------------------------------------------------------


def _check_entry_count(entries: Sequence[Mapping[str, Any]]) -> None:
    """Raise PutEventsError when a request holds no entry or more than MAX_ENTRIES."""
    if not entries:
        raise PutEventsError("1 validation error detected: Value at 'entries' must have at least 1 element")
    if len(entries) > MAX_ENTRIES:
        raise PutEventsError(
            f"1 validation error detected: Value at 'entries' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_ENTRIES}"
        )


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


def _accept_entry(
    entry: Mapping[str, Any], total_size: int, *, bus_ids: Mapping[str, str], account: str, region: str
) -> tuple[dict[str, str], dict[str, Any] | None, str]:
    """Validate one entry -> (its result entry, the event to route or None, the bus logical id).

    `total_size` is the size of the request's entries up to this one; `bus_ids` maps the bus names publishers
    use to the logical ids of the template's buses.
    """
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
    bus = bus_ids.get(bus_name)
    if bus is None:
        message = f"Event bus {bus_name} does not exist on the local stack (known: {', '.join(bus_ids)})."
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
        "account": account,
        "time": event_time,
        "region": region,
        "resources": [str(r) for r in entry.get("Resources") or []],
        "detail": detail,
    }
    return {"EventId": event_id}, event, bus


# --- HTTP: the AWS JSON 1.1 protocol, PutEvents only ---------------------------------------------------------


class _Publisher(Protocol):
    """What the HTTP endpoint publishes to (the LocalEventBus)."""

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...


class _BusHTTPServer(KeepAliveServer):
    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], bus: _Publisher) -> None:
        self.bus = bus
        super().__init__(address, handler)


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
        return read_limited_body(self, MAX_BODY_BYTES)

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
