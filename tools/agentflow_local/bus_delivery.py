"""Delivery for the local event bus: a queue of (target, event) jobs, worker threads, retries and dead letters.

Each job is one copy of one event for one rule's function. A worker invokes the handler with its own parsed copy
of the event (as Lambda would), retries with backoff up to `max_attempts`, then dead-letters the event in memory.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agentflow_local.lambda_runtime import FakeLambdaContext, Handler
from agentflow_local.template import EventRule, FunctionSpec

__all__ = ["DeadLetter", "Delivery", "Target"]

logger = logging.getLogger(__name__)


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


class _DeliverySettings(Protocol):
    """The bus's settings, read when they are used (the LocalEventBus)."""

    concurrency: int
    max_attempts: int
    retry_delay: float
    region: str
    account: str
    on_delivery: Callable[[Delivery], None] | None


class _DeliveryPool:
    """The bus's queue and workers, and its counters (all guarded by one condition).

    `handlers` (function logical id -> handler) is read when a job runs, so the bus may fill it until `start`.
    With `shuffle`, workers take queued jobs in random order, so duplicates land among other deliveries.
    """

    def __init__(
        self, settings: _DeliverySettings, handlers: Mapping[str, Handler], *, seed: int | None, shuffle: bool
    ) -> None:
        self._settings = settings
        self._handlers = handlers
        self._random = random.Random(seed)
        self._shuffle = shuffle
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._outstanding = 0  # jobs queued or in flight
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

        self.published = 0
        self.unmatched = 0
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self._dead_letters: list[DeadLetter] = []

    # -- lifecycle

    def start(self) -> None:
        self._stop.clear()
        for i in range(self._settings.concurrency):
            worker = threading.Thread(target=self._work, name=f"local-bus-worker-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self, timeout: float) -> float:
        """Stop taking jobs and wait for the handlers in flight; returns the deadline (monotonic) for the rest."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                logger.warning("local event bus: %s still running a handler after %ss", worker.name, timeout)
        self._workers.clear()
        return deadline

    def drop_queued(self) -> int:
        """Forget the jobs still queued (after `stop`); returns how many there were."""
        with self._cond:
            dropped = len(self._queue)
            self._outstanding -= dropped
            self._queue.clear()
            self._cond.notify_all()
        return dropped

    def submit(self, jobs: list[_Job], *, accepted: int, unmatched: int) -> None:
        """Queue the jobs of one PutEvents call, counting its accepted entries and those that matched no rule."""
        with self._cond:
            self.published += accepted
            self.unmatched += unmatched
            self._queue.extend(jobs)
            self._outstanding += len(jobs)
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding == 0, timeout)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        with self._cond:
            return list(self._dead_letters)

    # -- the workers

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
        handler = self._handlers[job.target.function.logical_id]
        error: BaseException | None = None
        for attempt in range(1, self._settings.max_attempts + 1):
            error = self._attempt(job, handler, attempt)
            if error is None:
                with self._cond:
                    self.delivered += 1
                return
            if attempt < self._settings.max_attempts:
                logger.warning(
                    "local event bus: %s failed on event %s (attempt %d of %d): %r",
                    job.target.function.logical_id,
                    job.event_id,
                    attempt,
                    self._settings.max_attempts,
                    error,
                )
                with self._cond:
                    self.retried += 1
                # Backoff as Lambda's async retries do (shorter); stop() cuts it short and abandons the event.
                if self._stop.wait(self._settings.retry_delay * 2 ** (attempt - 1)):
                    return
        self._dead_letter(job, error)

    def _attempt(self, job: _Job, handler: Handler, attempt: int) -> BaseException | None:
        """Invoke the handler once with a fresh copy of the event; returns what it raised, if anything."""
        spec, rule = job.target.function, job.target.rule
        event = json.loads(job.event_json)
        context = FakeLambdaContext.for_function(spec, region=self._settings.region, account=self._settings.account)
        result: Any = None
        error: BaseException | None = None
        try:
            result = handler(event, context)
        except Exception as exc:
            error = exc
        self._notify(Delivery(spec.logical_id, rule.name, json.loads(job.event_json), attempt, job.copy, error, result))
        return error

    def _dead_letter(self, job: _Job, error: BaseException | None) -> None:
        spec, rule = job.target.function, job.target.rule
        attempts = self._settings.max_attempts
        letter = DeadLetter(spec.logical_id, rule.name, json.loads(job.event_json), repr(error), attempts)
        logger.error(
            "local event bus: %s failed on event %s after %d attempts, dead-lettered: %r",
            spec.logical_id,
            job.event_id,
            attempts,
            error,
            exc_info=error,
        )
        with self._cond:
            self.failed += 1
            self._dead_letters.append(letter)

    def _notify(self, delivery: Delivery) -> None:
        on_delivery = self._settings.on_delivery
        if on_delivery is None:
            return
        try:
            on_delivery(delivery)
        except Exception:
            logger.exception("local event bus: on_delivery hook raised")
