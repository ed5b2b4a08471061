"""The local SQS: a real boto3 `sqs` client over HTTP, queues from a template, Lambda's SQS event source mapping
delivering to in-process handlers, and time on a FakeClock (nothing here waits for a delay in real time)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from botocore.exceptions import ClientError

from agentflow_local.queues import ENDPOINT_ENV, LocalQueues, QueueSpec, read_queue
from agentflow_local.template import AppTemplate, TemplateError, load_template
from tests.support.clock import FakeClock

VISIBILITY = 60

TEMPLATE = f"""
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Timeout: 30
Resources:
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: {VISIBILITY}
      MessageRetentionPeriod: 1209600
      SqsManagedSseEnabled: true
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDeadLetters.Arn
        maxReceiveCount: 3
  WorkDeadLetters:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  Slow:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: slow-queue
      DelaySeconds: 30
      MessageRetentionPeriod: 120
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.lambda_handler
      MemorySize: 256
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 10
            FunctionResponseTypes:
              - ReportBatchItemFailures
  SlowWorker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: slow/
      Handler: app.lambda_handler
      Events:
        Slow:
          Type: SQS
          Properties:
            Queue: !Ref Slow
            BatchSize: 2
"""

# A handler module as NodeRetryFunction would write it: Powertools' BatchProcessor reports the failed records.
POWERTOOLS_APP = """
import json, os
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

processor = BatchProcessor(event_type=EventType.SQS)

def record_handler(record):
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps({"body": record.body, "count": record.attributes.approximate_receive_count}) + "\\n")
    if record.body == "bad" and record.attributes.approximate_receive_count == "1":
        raise ValueError("bad record")

def lambda_handler(event, context):
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
"""


@dataclass(frozen=True)
class Call:
    function: str
    event: dict[str, Any]
    remaining_ms: int
    memory: int


class Recorder:
    """In-memory handlers that record every invocation; `answer` decides what a Worker invocation returns."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self.answer: Callable[[dict[str, Any]], Any] = lambda event: None

    def handler(self, function: str) -> Callable[[dict[str, Any], Any], Any]:
        def handle(event: dict[str, Any], context: Any) -> Any:
            call = Call(function, event, context.get_remaining_time_in_millis(), context.memory_limit_in_mb)
            with self._lock:
                self.calls.append(call)
            assert context.function_name == function
            return self.answer(event)

        return handle

    def records(self, function: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            calls = list(self.calls)
        return [r for c in calls if function in (None, c.function) for r in c.event["Records"]]

    def bodies(self, function: str | None = None) -> list[str]:
        return [r["body"] for r in self.records(function)]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTemplate:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "records.jsonl"))
    return load_template(tmp_path / "template.yaml")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def queues(app: AppTemplate, clock: FakeClock, recorder: Recorder) -> Iterator[LocalQueues]:
    handlers = {name: recorder.handler(name) for name in ("Worker", "SlowWorker")}
    with LocalQueues(app, clock=clock, handlers=handlers, concurrency=2) as local_queues:
        yield local_queues


def sqs_client(url: str) -> Any:
    return boto3.client(
        "sqs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def client(queues: LocalQueues) -> Any:
    return sqs_client(queues.url)


@pytest.fixture
def work_url(queues: LocalQueues) -> str:
    return queues.local_url("Work")


def test_a_message_is_delivered_as_lambdas_sqs_event(
    queues: LocalQueues, client: Any, work_url: str, recorder: Recorder, clock: FakeClock
) -> None:
    body = json.dumps({"execution_id": "e1", "node_id": "n1", "attempt": 2})
    sent = client.send_message(
        QueueUrl=work_url,
        MessageBody=body,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "retry"}},
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}},
    )
    assert queues.wait_idle(10)

    [call] = recorder.calls
    [record] = call.event["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfMessageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["messageId"] == sent["MessageId"]
    assert record["body"] == body
    assert record["md5OfBody"] == sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queues.arn("Work") == "arn:aws:sqs:us-east-1:000000000000:Work"
    assert record["awsRegion"] == "us-east-1"
    assert record["receiptHandle"]
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "retry", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }
    sent_ms = str(int(clock.now * 1000))
    assert record["attributes"] == {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": sent_ms,
        "SenderId": "000000000000",
        "ApproximateFirstReceiveTimestamp": sent_ms,
        "AWSTraceHeader": "Root=1-abc",
    }
    SqsModel.model_validate(call.event)  # Powertools' parser model of Lambda's SQS event accepts it
    # The context is the function's: its memory, and the remaining time of its 30 s timeout.
    assert call.memory == 256
    assert 0 < call.remaining_ms <= 30_000
    assert (queues.sent, queues.delivered, queues.failed, queues.invocations) == (1, 1, 0, 1)
    assert queues.messages("Work") == []


def test_a_delay_is_honoured_on_the_clock(
    queues: LocalQueues, client: Any, work_url: str, recorder: Recorder, clock: FakeClock
) -> None:
    client.send_message(QueueUrl=work_url, MessageBody="later", DelaySeconds=60)
    assert queues.pending_delayed("Work") == 1
    attributes = client.get_queue_attributes(QueueUrl=work_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attributes["ApproximateNumberOfMessages"] == "0"

    # A message without a delay goes through at once: the poller has looked, and left the delayed one alone.
    client.send_message(QueueUrl=work_url, MessageBody="marker-1")
    assert queues.wait_idle(10)
    assert recorder.bodies() == ["marker-1"]
    clock.now += 59
    client.send_message(QueueUrl=work_url, MessageBody="marker-2")
    assert queues.wait_idle(10)
    assert recorder.bodies() == ["marker-1", "marker-2"]

    clock.now += 1
    assert queues.wait_idle(10)
    assert recorder.bodies() == ["marker-1", "marker-2", "later"]
    assert queues.pending_delayed() == 0

    clock.now += 3600
    client.send_message(QueueUrl=work_url, MessageBody="marker-3")
    assert queues.wait_idle(10)
    assert Counter(recorder.bodies())["later"] == 1  # delivered once, then deleted


def test_the_queues_default_delay_applies_and_messages_expire(
    queues: LocalQueues, client: Any, recorder: Recorder, clock: FakeClock
) -> None:
    slow_url = client.get_queue_url(QueueName="slow-queue")["QueueUrl"]
    assert slow_url == queues.local_url("Slow")
    client.send_message(QueueUrl=slow_url, MessageBody="default-delay")  # the queue's DelaySeconds: 30
    client.send_message(QueueUrl=slow_url, MessageBody="too-late", DelaySeconds=900)  # past its 120 s retention
    assert queues.pending_delayed("Slow") == 2
    clock.now += 30
    assert queues.wait_idle(10)
    assert recorder.bodies("SlowWorker") == ["default-delay"]

    clock.now += 900
    assert queues.wait_idle(10)
    assert queues.messages("Slow") == []
    assert recorder.bodies("SlowWorker") == ["default-delay"]
    assert queues.expired == 1


def test_a_partial_batch_failure_brings_back_only_the_failed_message(
    queues: LocalQueues, client: Any, work_url: str, recorder: Recorder, clock: FakeClock
) -> None:
    recorder.answer = lambda event: {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["body"] == "bad" and r["attributes"]["ApproximateReceiveCount"] == "1"
        ]
    }
    entries = [{"Id": f"m{i}", "MessageBody": body} for i, body in enumerate(["good-1", "bad", "good-2"])]
    client.send_message_batch(QueueUrl=work_url, Entries=entries)
    assert queues.wait_idle(10)

    [first] = recorder.calls
    assert [r["body"] for r in first.event["Records"]] == ["good-1", "bad", "good-2"]  # one batch of three
    [left] = queues.messages("Work")
    assert (left.body, left.receive_count, left.visible_at) == ("bad", 1, clock.now + VISIBILITY)
    assert (queues.delivered, queues.failed) == (2, 1)
    assert queues.pending_delayed("Work") == 1
    attributes = client.get_queue_attributes(
        QueueUrl=work_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attributes["Attributes"] == {"ApproximateNumberOfMessagesNotVisible": "1"}

    clock.now += VISIBILITY - 1
    client.send_message(QueueUrl=work_url, MessageBody="marker")
    assert queues.wait_idle(10)
    assert recorder.bodies() == ["good-1", "bad", "good-2", "marker"]

    clock.now += 1
    assert queues.wait_idle(10)
    [again] = recorder.calls[-1].event["Records"]
    assert again["body"] == "bad"
    assert again["messageId"] == first.event["Records"][1]["messageId"]
    assert again["receiptHandle"] != first.event["Records"][1]["receiptHandle"]
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert queues.messages("Work") == []
    assert (queues.delivered, queues.failed) == (4, 1)


def test_a_raising_handler_brings_back_the_whole_batch(
    queues: LocalQueues, client: Any, work_url: str, recorder: Recorder, clock: FakeClock
) -> None:
    def answer(event: dict[str, Any]) -> None:
        if event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1":
            raise RuntimeError("transient")

    recorder.answer = answer
    client.send_message_batch(
        QueueUrl=work_url, Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "b", "MessageBody": "2"}]
    )
    assert queues.wait_idle(10)
    assert len(queues.messages("Work")) == 2
    assert (queues.delivered, queues.failed) == (0, 2)

    clock.now += VISIBILITY
    assert queues.wait_idle(10)
    first, second = recorder.calls
    assert [r["messageId"] for r in first.event["Records"]] == [r["messageId"] for r in second.event["Records"]]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in second.event["Records"]} == {"2"}
    assert queues.messages("Work") == []
    assert (queues.delivered, queues.failed) == (2, 2)


def test_an_invalid_batch_item_failures_answer_fails_the_whole_batch(
    queues: LocalQueues, client: Any, work_url: str, recorder: Recorder
) -> None:
    recorder.answer = lambda event: {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]}
    client.send_message_batch(
        QueueUrl=work_url, Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "b", "MessageBody": "2"}]
    )
    assert queues.wait_idle(10)
    assert len(queues.messages("Work")) == 2
    assert queues.failed == 2


def test_without_report_batch_item_failures_the_answer_is_ignored(
    queues: LocalQueues, client: Any, recorder: Recorder, clock: FakeClock
) -> None:
    recorder.answer = lambda event: {
        "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
    }
    client.send_message(QueueUrl=queues.local_url("Slow"), MessageBody="x", DelaySeconds=0)
    assert queues.wait_idle(10)
    assert recorder.bodies("SlowWorker") == ["x"]
    assert queues.messages("Slow") == []
    assert (queues.delivered, queues.failed) == (1, 0)


def test_after_max_receive_count_a_message_moves_to_the_dead_letter_queue(
    queues: LocalQueues, client: Any, work_url: str, recorder: Recorder, clock: FakeClock
) -> None:
    def always_fail(event: dict[str, Any]) -> None:
        raise RuntimeError("permanent")

    recorder.answer = always_fail
    message_id = client.send_message(QueueUrl=work_url, MessageBody="doomed")["MessageId"]
    for _ in range(3):  # maxReceiveCount: 3
        assert queues.wait_idle(10)
        clock.now += VISIBILITY
    assert queues.wait_idle(10)  # the fourth receive moved it instead: the dead-letter queue has no consumer

    counts = [r["attributes"]["ApproximateReceiveCount"] for r in recorder.records()]
    assert counts == ["1", "2", "3"]
    assert queues.messages("Work") == []
    [letter] = queues.messages("WorkDeadLetters")
    assert (letter.message_id, letter.body, letter.dead_letter_source) == (message_id, "doomed", queues.arn("Work"))
    assert (queues.dead_lettered, queues.failed, queues.delivered) == (1, 3, 0)
    dead_letter_url = queues.local_url("WorkDeadLetters")
    attributes = client.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"
    policy = client.get_queue_attributes(QueueUrl=work_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(policy["RedrivePolicy"]) == {
        "deadLetterTargetArn": queues.arn("WorkDeadLetters"),
        "maxReceiveCount": 3,
    }


def test_redeliver_gives_every_message_duplicates_interleaved(app: AppTemplate, clock: FakeClock) -> None:
    recorder = Recorder()
    handlers = {name: recorder.handler(name) for name in ("Worker", "SlowWorker")}
    with LocalQueues(app, clock=clock, handlers=handlers, redeliver=2, seed=7, concurrency=1) as local_queues:
        client = sqs_client(local_queues.url)
        ids = [
            result["MessageId"]
            for batch in (range(5), range(5, 10))
            for result in client.send_message_batch(
                QueueUrl=local_queues.local_url("Work"),
                Entries=[{"Id": f"m{i}", "MessageBody": f"body-{i}"} for i in batch],
            )["Successful"]
        ]
        assert local_queues.wait_idle(10)

    seen = [r["messageId"] for r in recorder.records()]
    assert Counter(seen) == dict.fromkeys(ids, 3)
    assert (local_queues.sent, local_queues.delivered) == (10, 30)
    assert len({r["receiptHandle"] for r in recorder.records()}) == 30  # a receipt handle per receive
    assert seen != sorted(seen, key=seen.index)  # not grouped: duplicates interleave with other messages


def test_consumers_of_one_queue_compete_for_its_messages(tmp_path: Path, clock: FakeClock) -> None:
    consumer = """
  {name}:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {name}/
      Handler: app.lambda_handler
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: {queue}
            BatchSize: 2
"""
    text = "Resources:\n  Jobs:\n    Type: AWS::SQS::Queue\n"
    text += consumer.format(name="First", queue="!GetAtt Jobs.Arn") + consumer.format(name="Second", queue="!Ref Jobs")
    # A queue outside the template cannot be polled locally: its consumer is left out (and never loaded).
    text += consumer.format(name="Elsewhere", queue="arn:aws:sqs:us-east-1:123456789012:elsewhere")
    (tmp_path / "template.yaml").write_text(text)
    recorder = Recorder()
    handlers = {name: recorder.handler(name) for name in ("First", "Second")}
    with LocalQueues(load_template(tmp_path / "template.yaml"), clock=clock, handlers=handlers) as local_queues:
        entries = [{"Id": f"m{i}", "MessageBody": str(i)} for i in range(6)]
        sqs_client(local_queues.url).send_message_batch(QueueUrl=local_queues.local_url("Jobs"), Entries=entries)
        assert local_queues.wait_idle(10)
    assert sorted(recorder.bodies()) == [str(i) for i in range(6)]  # each message once, to one of them
    assert {c.function for c in recorder.calls} == {"First", "Second"}


def test_send_message_batch_sends_the_valid_entries_and_reports_the_others(
    queues: LocalQueues, client: Any, work_url: str, recorder: Recorder
) -> None:
    answer = client.send_message_batch(
        QueueUrl=work_url,
        Entries=[
            {"Id": "ok-1", "MessageBody": "one"},
            {"Id": "late", "MessageBody": "two", "DelaySeconds": 901},
            {"Id": "ok-2", "MessageBody": "three", "DelaySeconds": 0},
        ],
    )
    assert [e["Id"] for e in answer["Successful"]] == ["ok-1", "ok-2"]
    assert answer["Successful"][0]["MD5OfMessageBody"] == hashlib.md5(b"one").hexdigest()
    [failed] = answer["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == ("late", "InvalidParameterValue", True)
    assert queues.wait_idle(10)
    assert recorder.bodies() == ["one", "three"]
    assert queues.sent == 2


LIMIT = 256 * 1024


def _batch(count: int, size: int = 1, same_id: bool = False) -> list[dict[str, str]]:
    return [{"Id": "a" if same_id else f"m{i}", "MessageBody": "x" * size} for i in range(count)]


NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
INVALID = ("InvalidParameterValue", "ClientError")  # SQS models no exception for it
# id -> (the call, given a client and the Work queue's URL; the ClientError code; botocore's exception class)
REFUSALS: dict[str, tuple[Callable[[Any, str], Any], tuple[str, str]]] = {
    "unknown-queue": (lambda c, url: c.send_message(QueueUrl=url + "-nope", MessageBody="x"), NO_QUEUE),
    "other-account": (
        lambda c, url: c.send_message(QueueUrl=url.replace("000000000000", "111111111111"), MessageBody="x"),
        NO_QUEUE,
    ),
    "unknown-queue-name": (lambda c, url: c.get_queue_url(QueueName="nope"), NO_QUEUE),
    "delay-over-900": (lambda c, url: c.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901), INVALID),
    "negative-delay": (lambda c, url: c.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=-1), INVALID),
    "body-over-256-KiB": (lambda c, url: c.send_message(QueueUrl=url, MessageBody="x" * (LIMIT + 1)), INVALID),
    "invalid-characters": (
        lambda c, url: c.send_message(QueueUrl=url, MessageBody="nul \x00"),
        ("InvalidMessageContents", "InvalidMessageContents"),
    ),
    "empty-body": (lambda c, url: c.send_message(QueueUrl=url, MessageBody=""), ("MissingParameter", "ClientError")),
    "bad-attribute-type": (
        lambda c, url: c.send_message(
            QueueUrl=url, MessageBody="x", MessageAttributes={"a": {"DataType": "Date", "StringValue": "1"}}
        ),
        INVALID,
    ),
    "empty-batch": (
        lambda c, url: c.send_message_batch(QueueUrl=url, Entries=[]),
        ("AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest"),
    ),
    "eleven-entries": (
        lambda c, url: c.send_message_batch(QueueUrl=url, Entries=_batch(11)),
        ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest"),
    ),
    "repeated-ids": (
        lambda c, url: c.send_message_batch(QueueUrl=url, Entries=_batch(2, same_id=True)),
        ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct"),
    ),
    "bad-entry-id": (
        lambda c, url: c.send_message_batch(QueueUrl=url, Entries=[{"Id": "a b", "MessageBody": "x"}]),
        ("AWS.SimpleQueueService.InvalidBatchEntryId", "InvalidBatchEntryId"),
    ),
    "batch-over-256-KiB": (
        lambda c, url: c.send_message_batch(QueueUrl=url, Entries=_batch(3, size=LIMIT // 2)),
        ("AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong"),
    ),
    "unknown-attribute": (
        lambda c, url: c.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"]),
        ("InvalidAttributeName", "InvalidAttributeName"),
    ),
    "receive-message": (
        lambda c, url: c.receive_message(QueueUrl=url),
        ("AWS.SimpleQueueService.UnsupportedOperation", "UnsupportedOperation"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_client_errors_with_sqs_codes(queues: LocalQueues, client: Any, work_url: str, case: str) -> None:
    call, (code, exception) = REFUSALS[case]
    with pytest.raises(ClientError) as caught:
        call(client, work_url)
    assert caught.value.response["Error"]["Code"] == code
    assert type(caught.value).__name__ == exception  # botocore's modeled exception, e.g. client.exceptions.X
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert queues.sent == 0


def test_a_body_of_exactly_256_kib_is_accepted(queues: LocalQueues, client: Any, work_url: str) -> None:
    client.send_message(QueueUrl=work_url, MessageBody="x" * LIMIT)
    assert queues.sent == 1


@pytest.mark.parametrize(
    ("method", "headers", "body", "error_type"),
    [
        ("POST", {"X-Amz-Target": "AWSEvents.PutEvents"}, b"{}", "UnknownOperationException"),
        ("POST", {}, b"{}", "UnknownOperationException"),
        ("POST", {"X-Amz-Target": "AmazonSQS.SendMessage"}, b"{nope", "SerializationException"),
        ("POST", {"X-Amz-Target": "AmazonSQS.SendMessage"}, b"[]", "SerializationException"),
        ("POST", {"X-Amz-Target": "AmazonSQS.PurgeQueue"}, b"{}", "UnsupportedOperation"),
        ("GET", {}, None, "UnknownOperationException"),
    ],
)
def test_anything_else_is_a_json_400(
    queues: LocalQueues, method: str, headers: dict[str, str], body: bytes | None, error_type: str
) -> None:
    request = urllib.request.Request(queues.url + "/", data=body, method=method, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert caught.value.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert caught.value.headers["x-amzn-query-error"].endswith(";Sender")
    assert json.loads(caught.value.read())["__type"] == f"com.amazonaws.sqs#{error_type}"


def test_powertools_batch_processor_reads_the_event_and_its_partial_failures_are_honoured(
    app: AppTemplate, clock: FakeClock
) -> None:
    worker = app.functions["Worker"]
    worker.code_dir.mkdir()
    (worker.code_dir / "app.py").write_text(POWERTOOLS_APP)
    recorder = Recorder()
    # Worker's handler is loaded from its file, as the local stack loads functions/*/app.py.
    with LocalQueues(
        app, clock=clock, handlers={"SlowWorker": recorder.handler("SlowWorker")}, concurrency=1
    ) as local_queues:
        client = sqs_client(local_queues.url)
        entries = [{"Id": "good", "MessageBody": "good"}, {"Id": "bad", "MessageBody": "bad"}]
        client.send_message_batch(QueueUrl=local_queues.local_url("Work"), Entries=entries)
        assert local_queues.wait_idle(10)
        assert [m.body for m in local_queues.messages("Work")] == ["bad"]
        assert (local_queues.delivered, local_queues.failed) == (1, 1)
        clock.now += VISIBILITY
        assert local_queues.wait_idle(10)
        assert local_queues.messages("Work") == []

    lines = [json.loads(line) for line in Path(os.environ["RECORD_FILE"]).read_text().splitlines()]
    assert lines == [{"body": "good", "count": "1"}, {"body": "bad", "count": "1"}, {"body": "bad", "count": "2"}]


def test_addresses_and_refs(queues: LocalQueues, client: Any) -> None:
    url = queues.local_url("Work")
    assert url == f"{queues.url}/000000000000/Work"
    assert url.startswith("http://127.0.0.1:")
    assert client.get_queue_url(QueueName="Work")["QueueUrl"] == url
    refs = queues.refs()
    assert refs["Work"] == refs["Work.QueueUrl"] == url
    assert refs["Work.Arn"] == queues.arn("Work")
    assert refs["Slow.QueueName"] == "slow-queue"
    assert set(refs) == {
        f"{q}{attr}" for q in ("Work", "WorkDeadLetters", "Slow") for attr in ("", ".Arn", ".QueueName", ".QueueUrl")
    }
    # Any host names the same queue, as long as the account and the name match.
    localhost_url = url.replace("127.0.0.1", "localhost")
    assert client.send_message(QueueUrl=localhost_url, MessageBody="x")["MessageId"]
    with pytest.raises(KeyError, match="known: Work, WorkDeadLetters, Slow"):
        queues.local_url("Nope")


def test_endpoint_from_the_environment(queues: LocalQueues, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, queues.url)
    assert ENDPOINT_ENV == "AWS_ENDPOINT_URL_SQS"
    client = boto3.client("sqs")  # no endpoint_url: the environment variable points it at the local queues
    assert client.get_queue_url(QueueName="Work")["QueueUrl"] == queues.local_url("Work")


def test_without_http_the_operations_are_plain_calls(app: AppTemplate, clock: FakeClock, recorder: Recorder) -> None:
    handlers = {name: recorder.handler(name) for name in ("Worker", "SlowWorker")}
    with LocalQueues(app, clock=clock, handlers=handlers, serve_http=False) as local_queues:
        url = local_queues.local_url("Work")
        answer = local_queues.call("SendMessage", {"QueueUrl": url, "MessageBody": "direct"})
        assert local_queues.wait_idle(10)
        with pytest.raises(RuntimeError):
            _ = local_queues.url
    assert recorder.records()[0]["messageId"] == answer["MessageId"]


def test_wait_idle_waits_for_batches_in_flight(app: AppTemplate, clock: FakeClock) -> None:
    release = threading.Event()
    recorder = Recorder()
    recorder.answer = lambda event: release.wait(10) and None
    handlers = {name: recorder.handler(name) for name in ("Worker", "SlowWorker")}
    with LocalQueues(app, clock=clock, handlers=handlers) as local_queues:
        local_queues.call("SendMessage", {"QueueUrl": local_queues.local_url("Work"), "MessageBody": "held"})
        assert local_queues.wait_idle(0.2) is False
        release.set()
        assert local_queues.wait_idle(10) is True
    assert recorder.bodies() == ["held"]


def test_stop_leaves_no_threads_behind(app: AppTemplate, clock: FakeClock, recorder: Recorder) -> None:
    before = set(threading.enumerate())
    handlers = {name: recorder.handler(name) for name in ("Worker", "SlowWorker")}
    local_queues = LocalQueues(app, clock=clock, handlers=handlers, concurrency=4).start()
    client = sqs_client(local_queues.url)
    client.send_message(QueueUrl=local_queues.local_url("Work"), MessageBody="x")  # leaves a keep-alive connection
    assert local_queues.wait_idle(10)
    local_queues.stop(timeout=10)

    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []
    with pytest.raises(RuntimeError):
        local_queues.start()


def test_a_missing_handler_file_fails_at_start(app: AppTemplate, clock: FakeClock) -> None:
    local_queues = LocalQueues(app, clock=clock, serve_http=False)
    with pytest.raises(ImportError, match="Worker"):
        local_queues.start()
    local_queues.stop()


# --- queue resources -----------------------------------------------------------------------------------------


def test_read_queue_takes_the_properties_and_sqs_defaults(app: AppTemplate) -> None:
    work = read_queue("Work", app.resources["Work"])
    assert work == QueueSpec(
        "Work",
        visibility_timeout=VISIBILITY,
        message_retention=1_209_600,
        max_receive_count=3,
        dead_letter_queue="WorkDeadLetters",
    )
    assert read_queue("Slow", app.resources["Slow"]).name == "slow-queue"
    bare = read_queue("Q", {"Type": "AWS::SQS::Queue"})
    assert (bare.visibility_timeout, bare.delay_seconds, bare.message_retention, bare.maximum_message_size) == (
        30,
        0,
        345_600,
        262_144,
    )
    assert (bare.max_receive_count, bare.dead_letter_queue, bare.fifo) == (None, None, False)
    redrive = {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": "2"}
    literal = read_queue("Q", {"Properties": {"RedrivePolicy": redrive}})
    assert (literal.max_receive_count, literal.dead_letter_queue) == (2, "arn:aws:sqs:us-east-1:000000000000:dlq")


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"VisibilityTimeout": "soon"}, "VisibilityTimeout"),
        ({"RedrivePolicy": '{"maxReceiveCount": 1}'}, "RedrivePolicy must be a mapping"),
        ({"RedrivePolicy": {"deadLetterTargetArn": {"Ref": "D"}, "maxReceiveCount": 0}}, "at least 1"),
        ({"RedrivePolicy": {"deadLetterTargetArn": {"Fn::Sub": "x"}, "maxReceiveCount": 1}}, "unsupported queue"),
    ],
)
def test_read_queue_refuses_what_it_cannot_emulate(properties: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        read_queue("Q", {"Type": "AWS::SQS::Queue", "Properties": properties})


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("  Q:\n    Type: AWS::SQS::Queue\n    Properties: {FifoQueue: true}\n", "standard queues only"),
        (
            "  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      RedrivePolicy:\n"
            "        deadLetterTargetArn: !GetAtt Gone.Arn\n        maxReceiveCount: 2\n",
            "'Gone' is not in the template",
        ),
    ],
)
def test_queues_the_local_stack_cannot_emulate_are_refused(tmp_path: Path, resources: str, message: str) -> None:
    (tmp_path / "template.yaml").write_text("Resources:\n" + resources)
    with pytest.raises(TemplateError, match=message):
        LocalQueues(load_template(tmp_path / "template.yaml"), serve_http=False)
