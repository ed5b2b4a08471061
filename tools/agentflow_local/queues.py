"""The local SQS: the template's queues, the SQS API over real HTTP, and Lambda's SQS event source mapping, which
delivers batches of messages to in-process handlers on the stack's clock.

Real boto3 `sqs` clients send to it (`endpoint_url=queues.url`, or env AWS_ENDPOINT_URL_SQS), so the engine's
sender runs unchanged. Each `AWS::SQS::Queue` of the template is an in-memory standard queue known by a local URL
(`http://127.0.0.1:<port>/000000000000/<name>`). Time is the `clock` (epoch seconds, the stack's clock): a message
becomes visible at `clock() + DelaySeconds`, and a received one stays invisible for the queue's VisibilityTimeout.
As Lambda's event source mapping does, a batch whose handler returns is deleted, except the messages it names in
`batchItemFailures` (with ReportBatchItemFailures); a batch whose handler raises is not deleted, so it comes back
when its visibility timeout ends; a message received maxReceiveCount times moves to its RedrivePolicy's dead-letter
queue instead of being received again. The consumers of one queue compete for its messages, as event source
mappings do; `redeliver` adds duplicates, as standard queues may.

The parts live next to this module: `queues_api` (QueueSpec, the SQS operations and errors), `queues_http` (the
HTTP endpoint) and `queues_delivery` (the messages on the clock, the poller, the workers).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from agentflow.clock import Clock, system_clock
from agentflow.runtime import Runtime
from agentflow_local.lambda_runtime import LOCAL_ACCOUNT, Handler, load_handler
from agentflow_local.queues_api import Accepted, QueueSpec, SqsError, answer, read_queue
from agentflow_local.queues_delivery import QueueMessage, _Consumer, _Queue, _QueueDelivery
from agentflow_local.queues_http import _QueuesHTTPServer
from agentflow_local.template import AppTemplate, TemplateError

__all__ = ["ENDPOINT_ENV", "LocalQueues", "QueueMessage", "QueueSpec", "SqsError", "read_queue"]

logger = logging.getLogger(__name__)

# The variable boto3 reads for the sqs client's endpoint (AWS_ENDPOINT_URL_<service id>; the id is SQS).
ENDPOINT_ENV = "AWS_ENDPOINT_URL_SQS"


def _make_queues(
    template: AppTemplate, base_url: str, names: Mapping[str, str], *, region: str, account: str, now: float
) -> dict[str, _Queue]:
    """One _Queue per AWS::SQS::Queue resource, with its dead-letter queue and its consumers."""
    queues: dict[str, _Queue] = {}
    for logical_id in template.resources_of_type("AWS::SQS::Queue"):
        spec = read_queue(logical_id, template.resources[logical_id])
        if spec.fifo:
            raise TemplateError(f"{logical_id}: the local stack emulates standard queues only, not FIFO ones")
        name = names.get(logical_id) or spec.name or logical_id
        arn = f"arn:aws:sqs:{region}:{account}:{name}"
        queues[logical_id] = _Queue(spec, name, f"{base_url}/{account}/{name}", arn, now)
    for queue in queues.values():
        target = queue.spec.dead_letter_queue
        if target is not None:
            queue.dead_letter_queue = queues.get(_resolve(queues, target) or "")
            if queue.dead_letter_queue is None:
                raise TemplateError(f"{queue.spec.logical_id}: its dead-letter queue {target!r} is not in the template")
    for function, event in template.queue_targets():
        polled = _resolve(queues, event.queue)
        if polled is None:
            where = f"{function.logical_id}.{event.name}"
            logger.warning("local queues: %s polls %r, not a queue of the template: ignored", where, event.queue)
        elif event.enabled:
            queues[polled].consumers.append(_Consumer(function, event))
    return queues


def _resolve(queues: Mapping[str, _Queue], reference: str) -> str | None:
    """A logical id, or a literal queue ARN naming a queue of the template -> its logical id."""
    if reference in queues:
        return reference
    return next((logical_id for logical_id, q in queues.items() if q.arn == reference), None)


class LocalQueues:
    """In-process SQS queues with Lambda's SQS event source mapping, for the local stack and the tests.

    `queue_names` maps queue logical ids to the names in their URLs (default: the template's QueueName, else the
    logical id). `handlers` (function logical id -> handler) stands in for loading a function's module.
    """

    def __init__(
        self,
        template: AppTemplate,
        *,
        clock: Clock = system_clock,
        concurrency: int = 8,
        redeliver: int = 0,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        serve_http: bool = True,
        handlers: Mapping[str, Handler] | None = None,
        queue_names: Mapping[str, str] | None = None,
        region: str | None = None,
        account: str = LOCAL_ACCOUNT,
        poll_interval: float = 0.02,
    ) -> None:
        if concurrency < 1 or redeliver < 0 or poll_interval <= 0:
            raise ValueError("concurrency must be >= 1, redeliver >= 0 and poll_interval > 0")
        self.template = template
        self.clock = clock
        self.redeliver = redeliver
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.account = account
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._server = _QueuesHTTPServer((host, port), self) if serve_http else None
        self._server_thread: threading.Thread | None = None
        base_url = self.url if self._server is not None else f"http://{host}:{port}"
        names = dict(queue_names or {})
        queues = _make_queues(template, base_url, names, region=self.region, account=account, now=clock())
        self._queues = queues
        self._delivery = _QueueDelivery(
            queues,
            self._handlers,
            clock=clock,
            concurrency=concurrency,
            redeliver=redeliver,
            seed=seed,
            poll_interval=poll_interval,
            region=self.region,
            account=account,
        )
        self._started = False
        self._closed = False

    # -- addresses

    @property
    def url(self) -> str:
        """The endpoint for boto3: `endpoint_url=`, or env AWS_ENDPOINT_URL_SQS (see ENDPOINT_ENV)."""
        if self._server is None:
            raise RuntimeError("these queues were made with serve_http=False")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def local_url(self, logical_id: str) -> str:
        """The queue's URL: what `!Ref Queue` means on the local stack."""
        return self._queue(logical_id).url

    def arn(self, logical_id: str) -> str:
        """The queue's ARN: what `!GetAtt Queue.Arn` means on the local stack."""
        return self._queue(logical_id).arn

    def refs(self) -> dict[str, str]:
        """What `!Ref` and `!GetAtt` (Arn, QueueName, QueueUrl) of every queue mean locally: add them to the refs
        given to `resolve_environment`."""
        refs: dict[str, str] = {}
        for logical_id, queue in self._queues.items():
            refs[logical_id] = refs[f"{logical_id}.QueueUrl"] = queue.url
            refs[f"{logical_id}.Arn"] = queue.arn
            refs[f"{logical_id}.QueueName"] = queue.name
        return refs

    def _queue(self, logical_id: str) -> _Queue:
        try:
            return self._queues[logical_id]
        except KeyError:
            known = ", ".join(self._queues) or "none"
            raise KeyError(f"no queue {logical_id!r} in the template (known: {known})") from None

    # -- lifecycle

    def start(self, runtime: Runtime | None = None) -> LocalQueues:
        """Load the consumers' handlers (a missing or broken one fails here), then serve and deliver. With
        `runtime`, the handlers use it (its sqs client must point at this `url`)."""
        if self._started:
            return self
        if self._closed:
            raise RuntimeError("stopped LocalQueues cannot start again: make new ones")
        for queue in self._queues.values():
            for consumer in queue.consumers:
                logical_id = consumer.function.logical_id
                if logical_id not in self._handlers:
                    self._handlers[logical_id] = load_handler(consumer.function, runtime)
        self._started = True
        self._delivery.start()
        if self._server is not None:
            self._server_thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-queues-http", daemon=True
            )
            self._server_thread.start()
        logger.info("local queues started", extra={"url": self._server and self.url})
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop delivering (handlers in flight finish; batches received but not started come back after their
        visibility timeout, as after a crash), then stop serving HTTP.

        HTTP stays up until the workers are done, so a handler that sends while it finishes does not fail.
        """
        if not self._started:
            if self._server is not None and not self._closed:
                self._server.server_close()
            self._closed = True
            return
        deadline = self._delivery.stop(timeout)
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()  # joins the request threads
            if self._server_thread is not None:
                self._server_thread.join(max(0.0, deadline - time.monotonic()))
        self._started = False
        self._closed = True

    def __enter__(self) -> LocalQueues:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no batch is in flight and no message a function consumes is visible on the clock; False on
        timeout. Messages not visible yet (delayed, or waiting out a visibility timeout) do not count: moving the
        clock past them makes the queues busy again (see `pending_delayed`)."""
        return self._delivery.wait_idle(timeout)

    # -- counters and contents

    @property
    def sent(self) -> int:
        """Messages accepted by SendMessage and SendMessageBatch (duplicates from `redeliver` not counted)."""
        return self._delivery.sent

    @property
    def delivered(self) -> int:
        """Messages of batches a handler processed and that were deleted (duplicates count)."""
        return self._delivery.delivered

    @property
    def failed(self) -> int:
        """Message deliveries that failed: the handler raised, or named the message in batchItemFailures."""
        return self._delivery.failed

    @property
    def dead_lettered(self) -> int:
        """Messages moved to a dead-letter queue after maxReceiveCount receives."""
        return self._delivery.dead_lettered

    @property
    def expired(self) -> int:
        """Messages dropped because they outlived the queue's MessageRetentionPeriod on the clock."""
        return self._delivery.expired

    @property
    def invocations(self) -> int:
        """Handler invocations (one per batch)."""
        return self._delivery.invocations

    def pending_delayed(self, logical_id: str | None = None) -> int:
        """Messages not visible yet on the clock, in one queue or in all: sent with a delay not over yet, or
        received and waiting out their visibility timeout (a failed delivery)."""
        selected = [self._queue(logical_id)] if logical_id is not None else list(self._queues.values())
        return self._delivery.pending(selected)

    def messages(self, logical_id: str) -> list[QueueMessage]:
        """What one queue holds now, oldest first (a dead-letter queue's messages, say)."""
        return self._delivery.snapshot(self._queue(logical_id))

    # -- the SQS API (the HTTP endpoint calls `call`; queues_api calls the rest)

    def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """An SQS operation by name (`"SendMessage"`, boto3's parameter names), without HTTP; raises SqsError."""
        return answer(self, operation, request)

    def find_queue(self, queue_url: str) -> str | None:
        """The queue a QueueUrl names, by its account and name (any host: `localhost` works too)."""
        parts = queue_url.rstrip("/").split("/")
        return self.find_queue_named(parts[-1]) if len(parts) > 1 and parts[-2] == self.account else None

    def find_queue_named(self, name: str) -> str | None:
        return next((logical_id for logical_id, q in self._queues.items() if q.name == name), None)

    def spec(self, logical_id: str) -> QueueSpec:
        return self._queue(logical_id).spec

    def enqueue(self, logical_id: str, messages: Sequence[Accepted]) -> None:
        self._delivery.enqueue(self._queue(logical_id), messages)

    def queue_attributes(self, logical_id: str) -> dict[str, str]:
        """Every attribute GetQueueAttributes answers: the approximate counts on the clock and the settings."""
        queue = self._queue(logical_id)
        spec = queue.spec
        visible, delayed, not_visible = self._delivery.counts(queue)
        attributes = {
            "QueueArn": queue.arn,
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesNotVisible": str(not_visible),
            "ApproximateNumberOfMessagesDelayed": str(delayed),
            "CreatedTimestamp": str(int(queue.created_at)),
            "LastModifiedTimestamp": str(int(queue.created_at)),
            "VisibilityTimeout": str(spec.visibility_timeout),
            "MaximumMessageSize": str(spec.maximum_message_size),
            "MessageRetentionPeriod": str(spec.message_retention),
            "DelaySeconds": str(spec.delay_seconds),
            "ReceiveMessageWaitTimeSeconds": "0",
            "SqsManagedSseEnabled": "true" if spec.managed_sse else "false",
        }
        if queue.dead_letter_queue is not None:
            policy = (
                f'{{"deadLetterTargetArn":"{queue.dead_letter_queue.arn}","maxReceiveCount":{spec.max_receive_count}}}'
            )
            attributes["RedrivePolicy"] = policy
        return attributes
