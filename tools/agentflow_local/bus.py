"""The local EventBridge: PutEvents over real HTTP, rules from template.yaml, delivery to in-process handlers.

Real boto3 `events` clients publish to it: `endpoint_url=bus.url`, or env `AWS_ENDPOINT_URL_EVENTBRIDGE`
(botocore names the variable after the service id "EventBridge", not "events"), so the engine's publisher runs
unchanged. Each event is matched against the EventBridge rules of the template and delivered, as EventBridge's
event dict, to the rule's function on a worker pool: at least once (`redeliver` adds duplicates in random
order), with retries, then to an in-memory dead-letter list.

The parts live next to this module: `event_patterns` (the pattern language), `bus_put_events` (entries checked
and turned into events; the HTTP endpoint) and `bus_delivery` (the queue, the workers, retries, dead letters).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentflow.runtime import Runtime
from agentflow_local.bus_delivery import DeadLetter, Delivery, Target, _DeliveryPool, _Job
from agentflow_local.bus_put_events import (
    MAX_ENTRIES,
    MAX_ENTRY_BYTES,
    PutEventsError,
    _accept_entry,
    _BusHTTPServer,
    _check_entry_count,
    _entry_size,
    _PutEventsHandler,
)
from agentflow_local.event_patterns import PatternError, event_matches, validate_pattern
from agentflow_local.lambda_runtime import LOCAL_ACCOUNT, Handler, load_handler
from agentflow_local.template import DEFAULT_BUS, AppTemplate

__all__ = [
    "ENDPOINT_ENV",
    "MAX_ENTRIES",
    "MAX_ENTRY_BYTES",
    "DeadLetter",
    "Delivery",
    "LocalEventBus",
    "PatternError",
    "PutEventsError",
    "Target",
    "event_matches",
    "validate_pattern",
]

logger = logging.getLogger(__name__)

# The variable boto3 reads for the events client's endpoint (AWS_ENDPOINT_URL_<service id>; the id is EventBridge).
ENDPOINT_ENV = "AWS_ENDPOINT_URL_EVENTBRIDGE"


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
        # Duplicates interleave with other deliveries in random order.
        self._pool = _DeliveryPool(self, self._handlers, seed=seed, shuffle=redeliver > 0)
        self._started = False
        self._closed = False

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
        self._started = True
        self._pool.start()
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
        deadline = self._pool.stop(timeout)
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()  # joins the request threads
            if self._server_thread is not None:
                self._server_thread.join(max(0.0, deadline - time.monotonic()))
        dropped = self._pool.drop_queued()
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
        return self._pool.wait_idle(timeout)

    # -- counters

    @property
    def published(self) -> int:
        """Entries accepted by PutEvents."""
        return self._pool.published

    @property
    def delivered(self) -> int:
        """Handler invocations that returned (duplicates count)."""
        return self._pool.delivered

    @property
    def failed(self) -> int:
        """Deliveries that failed every attempt and went to `dead_letters`."""
        return self._pool.failed

    @property
    def retried(self) -> int:
        """Handler invocations that raised and were tried again."""
        return self._pool.retried

    @property
    def unmatched(self) -> int:
        """Accepted events that matched no rule (EventBridge drops them too)."""
        return self._pool.unmatched

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return self._pool.dead_letters

    # -- publishing

    def targets_for(self, event: Mapping[str, Any], bus: str = DEFAULT_BUS) -> list[Target]:
        """The targets whose rule is on `bus` (a logical id) and matches `event`."""
        return [t for t in self.targets if t.rule.bus == bus and event_matches(t.rule.pattern, event)]

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """EventBridge PutEvents: the same entries and the same answer, without HTTP."""
        _check_entry_count(entries)
        results: list[dict[str, str]] = []
        jobs: list[_Job] = []
        total_size = 0
        accepted = unmatched = 0
        for entry in entries:
            total_size += _entry_size(entry)
            result, event, bus = _accept_entry(
                entry, total_size, bus_ids=self._bus_ids, account=self.account, region=self.region
            )
            results.append(result)
            if event is None:
                continue
            accepted += 1
            targets = self.targets_for(event, bus)
            if not targets:
                unmatched += 1
            event_json = json.dumps(event)
            jobs.extend(_Job(t, event["id"], event_json, copy) for t in targets for copy in range(1 + self.redeliver))
        self._pool.submit(jobs, accepted=accepted, unmatched=unmatched)
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}
