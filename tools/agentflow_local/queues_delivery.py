"""Delivery for the local queues: the messages of each queue, on the clock, and Lambda's SQS event source mapping.

A poller thread looks at the clock every `poll_interval` seconds of real time (it never sleeps for a delay, so a
test's FakeClock controls every delay): it drops messages past their retention, then, while a worker is free,
receives a batch for the next consumer of a queue, the way the event source mapping calls ReceiveMessage. A worker
invokes the handler with Lambda's SQS event, then deletes what succeeded; what failed is left to come back when
its visibility timeout ends, as in SQS. One condition guards every queue, the batches and the counters.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentflow.clock import Clock
from agentflow_local.lambda_runtime import FakeLambdaContext, Handler
from agentflow_local.queues_api import Accepted, QueueSpec
from agentflow_local.template import FunctionSpec, QueueEvent

__all__ = ["QueueMessage"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueMessage:
    """A message of a local queue as `LocalQueues.messages()` shows it: a snapshot, changing it changes nothing."""

    message_id: str
    body: str
    receive_count: int
    sent_at: float  # on the clock
    visible_at: float  # on the clock: when it can be received (again)
    message_attributes: dict[str, dict[str, str]]
    copy: int  # 0, or 1..redeliver for the duplicates `redeliver` adds
    dead_letter_source: str | None  # in a dead-letter queue: the ARN of the queue it was moved from


@dataclass(eq=False)
class _Message:
    accepted: Accepted
    sent_at: float
    visible_at: float
    copy: int
    receive_count: int = 0
    first_received_at: float = 0.0
    dead_letter_source: str | None = None

    def snapshot(self) -> QueueMessage:
        accepted = self.accepted
        return QueueMessage(
            accepted.message_id,
            accepted.body,
            self.receive_count,
            self.sent_at,
            self.visible_at,
            {name: dict(value) for name, value in accepted.message_attributes.items()},
            self.copy,
            self.dead_letter_source,
        )


@dataclass(frozen=True)
class _Consumer:
    """One SQS event of a function: its event source mapping."""

    function: FunctionSpec
    event: QueueEvent


@dataclass(eq=False)
class _Queue:
    spec: QueueSpec
    name: str
    url: str
    arn: str
    created_at: float  # on the clock
    dead_letter_queue: _Queue | None = None
    consumers: list[_Consumer] = field(default_factory=list)
    messages: list[_Message] = field(default_factory=list)  # oldest first
    turn: int = 0  # which consumer gets the next batch: they compete, as event source mappings of one queue do

    def counts(self, now: float) -> tuple[int, int, int]:
        """(visible, delayed, not visible): SQS's ApproximateNumberOfMessages, ...Delayed and ...NotVisible."""
        delayed = sum(m.visible_at > now and m.receive_count == 0 for m in self.messages)
        not_visible = sum(m.visible_at > now and m.receive_count > 0 for m in self.messages)
        return len(self.messages) - delayed - not_visible, delayed, not_visible


@dataclass
class _Batch:
    queue: _Queue
    consumer: _Consumer
    messages: list[_Message]
    event_json: str  # Lambda's SQS event, as JSON: the invocation parses its own copy


def _ms(seconds: float) -> str:
    return str(int(seconds * 1000))


def _lambda_attribute(attribute: Mapping[str, str]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event writes it (camelCase, with the list values SQS never filled)."""
    key = "binaryValue" if "BinaryValue" in attribute else "stringValue"
    value = attribute.get("BinaryValue", attribute.get("StringValue"))
    return {key: value, "stringListValues": [], "binaryListValues": [], "dataType": attribute["DataType"]}


def _failed_messages(result: Any, ids: set[str]) -> set[str] | None:
    """The message ids a ReportBatchItemFailures answer names. None when the answer is not valid (not an object,
    or an item that names no message of the batch), which Lambda counts as the whole batch failing."""
    if result is None or result == "":
        return set()
    if not isinstance(result, Mapping):
        return None
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    named: set[str] = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(item, str) or item not in ids:
            return None
        named.add(item)
    return named


class _QueueDelivery:
    """The queues' messages, the poller and the workers, and the counters (all guarded by one condition).

    `handlers` (function logical id -> handler) is read when a batch runs, so the owner may fill it until `start`.
    """

    def __init__(
        self,
        queues: Mapping[str, _Queue],
        handlers: Mapping[str, Handler],
        *,
        clock: Clock,
        concurrency: int,
        redeliver: int,
        seed: int | None,
        poll_interval: float,
        region: str,
        account: str,
    ) -> None:
        self.queues = queues
        self._handlers = handlers
        self._clock = clock
        self._concurrency = concurrency
        self._redeliver = redeliver
        self._random = random.Random(seed)
        self._poll_interval = poll_interval
        self._region = region
        self._account = account
        self._cond = threading.Condition()
        self._ready: list[_Batch] = []  # received, waiting for a worker
        self._running = 0  # batches received and not settled yet
        self._stopping = False
        self._threads: list[threading.Thread] = []

        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.dead_lettered = 0
        self.expired = 0
        self.invocations = 0

    # -- lifecycle

    def start(self) -> None:
        workers = [(self._work, f"local-queues-worker-{i}") for i in range(self._concurrency)]
        for target, name in [(self._poll, "local-queues-poller"), *workers]:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> float:
        """Stop receiving and wait for the handlers in flight; returns the deadline (monotonic) for the rest.

        Batches received but not started are dropped: their messages come back after their visibility timeout.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("local queues: %s still running a handler after %ss", thread.name, timeout)
        self._threads.clear()
        with self._cond:
            self._running -= len(self._ready)
            self._ready.clear()
            self._cond.notify_all()
        return deadline

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._running or self._visible_for_consumers(self._clock()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, self._poll_interval))
            return True

    def _visible_for_consumers(self, now: float) -> bool:
        return any(q.consumers and any(m.visible_at <= now for m in q.messages) for q in self.queues.values())

    # -- what the queues hold

    def enqueue(self, queue: _Queue, messages: Sequence[Accepted]) -> None:
        """Add accepted messages (with `redeliver` duplicates each), visible after their delay on the clock."""
        now = self._clock()
        with self._cond:
            for accepted in messages:
                copies = range(1 + self._redeliver)
                queue.messages.extend(_Message(accepted, now, now + accepted.delay, copy) for copy in copies)
            self.sent += len(messages)
            self._cond.notify_all()

    def pending(self, queues: Sequence[_Queue]) -> int:
        now = self._clock()
        with self._cond:
            return sum(m.visible_at > now for q in queues for m in q.messages)

    def snapshot(self, queue: _Queue) -> list[QueueMessage]:
        with self._cond:
            return [m.snapshot() for m in queue.messages]

    def counts(self, queue: _Queue) -> tuple[int, int, int]:
        now = self._clock()
        with self._cond:
            return queue.counts(now)

    # -- receiving: the event source mapping's poller

    def _poll(self) -> None:
        with self._cond:
            while not self._stopping:
                try:
                    self._receive_due(self._clock())
                except Exception:  # never lose the poller
                    logger.exception("local queues: receiving failed")
                self._cond.wait(self._poll_interval)

    def _receive_due(self, now: float) -> None:
        """Drop the messages past their retention; receive batches while a worker is free."""
        for queue in self.queues.values():
            kept = [m for m in queue.messages if m.sent_at + queue.spec.message_retention > now]
            self.expired += len(queue.messages) - len(kept)
            queue.messages = kept
            while queue.consumers and self._running < self._concurrency:
                batch = self._receive(queue, now)
                if batch is None:
                    break
                self._ready.append(batch)
                self._running += 1
                self._cond.notify_all()

    def _receive(self, queue: _Queue, now: float) -> _Batch | None:
        """One ReceiveMessage for the next consumer: up to its BatchSize visible messages, then invisible for the
        VisibilityTimeout. A message already received maxReceiveCount times moves to the dead-letter queue."""
        available = [m for m in queue.messages if m.visible_at <= now]
        if self._redeliver:
            self._random.shuffle(available)  # duplicates land among other messages
        consumer = queue.consumers[queue.turn % len(queue.consumers)]
        limit = queue.spec.max_receive_count
        taken: list[_Message] = []
        for message in available:
            if len(taken) == consumer.event.batch_size:
                break
            if limit is not None and message.receive_count >= limit:
                self._dead_letter(queue, message, now)
                continue
            message.receive_count += 1
            message.first_received_at = message.first_received_at or now
            message.visible_at = now + queue.spec.visibility_timeout
            taken.append(message)
        if not taken:
            return None
        queue.turn += 1
        event = {"Records": [self._record(queue, m) for m in taken]}
        return _Batch(queue, consumer, taken, json.dumps(event))

    def _record(self, queue: _Queue, message: _Message) -> dict[str, Any]:
        """One record of Lambda's SQS event, with a fresh receipt handle (one per receive)."""
        accepted = message.accepted
        attributes = {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": _ms(message.sent_at),
            "SenderId": self._account,
            "ApproximateFirstReceiveTimestamp": _ms(message.first_received_at),
        }
        if accepted.trace_header:
            attributes["AWSTraceHeader"] = accepted.trace_header
        if message.dead_letter_source:
            attributes["DeadLetterQueueSourceArn"] = message.dead_letter_source
        record: dict[str, Any] = {
            "messageId": accepted.message_id,
            "receiptHandle": uuid.uuid4().hex + uuid.uuid4().hex,
            "body": accepted.body,
            "attributes": attributes,
            "messageAttributes": {n: _lambda_attribute(a) for n, a in accepted.message_attributes.items()},
        }
        if accepted.md5_of_message_attributes:
            record["md5OfMessageAttributes"] = accepted.md5_of_message_attributes
        record.update(md5OfBody=accepted.md5_of_body, eventSource="aws:sqs", eventSourceARN=queue.arn)
        record["awsRegion"] = self._region
        return record

    def _dead_letter(self, queue: _Queue, message: _Message, now: float) -> None:
        """Move a message to its queue's dead-letter queue, keeping its id, body and sent time, as SQS does."""
        target = queue.dead_letter_queue
        assert target is not None  # LocalQueues checks every RedrivePolicy names a queue of the template
        queue.messages.remove(message)
        target.messages.append(
            _Message(message.accepted, message.sent_at, now, message.copy, dead_letter_source=queue.arn)
        )
        self.dead_lettered += 1
        logger.error(
            "local queues: message %s of %s was received %d times, moved to %s",
            message.accepted.message_id,
            queue.name,
            message.receive_count,
            target.name,
        )

    # -- the workers

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                batch = self._ready.pop(0)
            failed: set[str] | None = None
            try:
                failed = self._invoke(batch)
            except Exception:  # never lose a worker
                logger.exception("local queues: delivery crashed")
            finally:
                self._settle(batch, failed)

    def _invoke(self, batch: _Batch) -> set[str] | None:
        """Run the handler on the batch: the ids of the messages that failed, None when the whole batch did."""
        spec, event = batch.consumer.function, batch.consumer.event
        context = FakeLambdaContext.for_function(spec, region=self._region, account=self._account)
        with self._cond:
            self.invocations += 1
        try:
            result = self._handlers[spec.logical_id](json.loads(batch.event_json), context)
        except Exception as exc:
            logger.warning(
                "local queues: %s failed on a batch of %d from %s (back after its %ss visibility timeout): %r",
                spec.logical_id,
                len(batch.messages),
                batch.queue.name,
                batch.queue.spec.visibility_timeout,
                exc,
            )
            return None
        if not event.report_batch_item_failures:
            return set()  # Lambda ignores the answer: the batch succeeded
        failed = _failed_messages(result, {m.accepted.message_id for m in batch.messages})
        if failed is None:
            logger.warning("local queues: %s answered an invalid batchItemFailures: %r", spec.logical_id, result)
        return failed

    def _settle(self, batch: _Batch, failed: set[str] | None) -> None:
        """Delete what succeeded; a failed message stays invisible until its visibility timeout ends."""
        with self._cond:
            for message in batch.messages:
                if failed is None or message.accepted.message_id in failed:
                    self.failed += 1
                    continue
                self.delivered += 1
                if message in batch.queue.messages:  # not if it expired, or a duplicate receive deleted it
                    batch.queue.messages.remove(message)
            self._running -= 1
            self._cond.notify_all()
