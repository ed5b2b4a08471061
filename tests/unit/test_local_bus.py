"""The local EventBridge: real HTTP PutEvents from boto3, rules from a template, in-process delivery."""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from agentflow_local.bus import ENDPOINT_ENV, MAX_ENTRY_BYTES, Delivery, LocalEventBus
from agentflow_local.event_patterns import PatternError, event_matches, validate_pattern
from agentflow_local.template import AppTemplate, load_template

BUS_NAME = "agentflow-test-bus"

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Timeout: 30
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-bus
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: recorder/
      Handler: app.lambda_handler
      MemorySize: 256
      Events:
        Queued:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [agentflow]
              detail-type: [NodeExecutionQueued]
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: failing/
      Handler: app.lambda_handler
      Events:
        Boom:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [agentflow]
              detail-type: [Boom]
  Relay:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: relay/
      Handler: app.lambda_handler
      Events:
        Relay:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [agentflow]
              detail-type: [Relay]
"""

# Records every invocation as one JSON line; Powertools' inject_lambda_context proves the fake context is enough.
RECORDER_APP = """
import json, os, threading
from aws_lambda_powertools import Logger

logger = Logger(service="recorder-test")
_lock = threading.Lock()

@logger.inject_lambda_context
def lambda_handler(event, context):
    line = json.dumps({
        "event": event,
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
    })
    with _lock, open(os.environ["RECORD_FILE"], "a") as f:
        f.write(line + "\\n")
    return {"ok": True}
"""

FAILING_APP = """
import json, os, threading
_lock = threading.Lock()

def lambda_handler(event, context):
    with _lock, open(os.environ["FAIL_FILE"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    raise RuntimeError("boom")
"""

# Publishes to the bus from inside a handler, through boto3 and AWS_ENDPOINT_URL_EVENTBRIDGE, as the engine does.
RELAY_APP = """
import json, os
import boto3

def lambda_handler(event, context):
    client = boto3.client("events")
    client.put_events(Entries=[{
        "Source": "agentflow",
        "DetailType": "NodeExecutionQueued",
        "Detail": json.dumps({"relayed_from": event["id"], **event["detail"]}),
        "EventBusName": os.environ["EVENT_BUS_NAME"],
    }])
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTemplate:
    for name, code in (("recorder", RECORDER_APP), ("failing", FAILING_APP), ("relay", RELAY_APP)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(code)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    # Dummy credentials and region; nothing may leak to a real AWS endpoint.
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "records.jsonl"))
    monkeypatch.setenv("FAIL_FILE", str(tmp_path / "failures.jsonl"))
    monkeypatch.setenv("EVENT_BUS_NAME", BUS_NAME)
    return load_template(tmp_path / "template.yaml")


def records(path_var: str = "RECORD_FILE") -> list[dict[str, Any]]:
    path = Path(os.environ[path_var])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def bus(app: AppTemplate) -> Iterator[LocalEventBus]:
    with LocalEventBus(app, bus_names={"Bus": BUS_NAME}, retry_delay=0.01) as local_bus:
        yield local_bus


def events_client(url: str) -> Any:
    return boto3.client("events", endpoint_url=url, region_name="us-east-1")


def entry(detail_type: str = "NodeExecutionQueued", source: str = "agentflow", **detail: Any) -> dict[str, Any]:
    return {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail or {"execution_id": "e1", "node_id": "n1", "seq": 0}),
        "EventBusName": BUS_NAME,
    }


def test_put_events_over_http_delivers_an_eventbridge_event(bus: LocalEventBus) -> None:
    response = events_client(bus.url).put_events(Entries=[entry(execution_id="e1", node_id="n1", seq=0)])

    assert response["FailedEntryCount"] == 0
    event_id = response["Entries"][0]["EventId"]
    assert bus.wait_idle(10)
    [record] = records()
    event = record["event"]
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert event["id"] == event_id
    assert event["version"] == "0"
    assert event["source"] == "agentflow"
    assert event["detail-type"] == "NodeExecutionQueued"
    assert event["detail"] == {"execution_id": "e1", "node_id": "n1", "seq": 0}
    assert event["region"] == "us-east-1"
    assert re.fullmatch(r"\d{12}", event["account"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert event["resources"] == []
    # The context is Lambda's: the function's name, memory and timeout (30 s in Globals), a fresh request id.
    assert record["function_name"] == "Recorder"
    assert record["memory"] == 256
    assert 0 < record["remaining"] <= 30_000
    assert (bus.published, bus.delivered, bus.failed) == (1, 1, 0)


def test_endpoint_from_environment_and_time_and_resources(bus: LocalEventBus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, bus.url)
    assert ENDPOINT_ENV == "AWS_ENDPOINT_URL_EVENTBRIDGE"  # botocore's name: the service id, not "events"
    client = boto3.client("events")  # no endpoint_url: the environment variable points it at the bus
    item: Any = {**entry(), "Resources": ["arn:aws:dynamodb:us-east-1:000000000000:table/t"], "Time": 1_700_000_000}
    assert client.put_events(Entries=[item])["FailedEntryCount"] == 0
    assert bus.wait_idle(10)
    [record] = records()
    assert record["event"]["time"] == "2023-11-14T22:13:20Z"
    assert record["event"]["resources"] == ["arn:aws:dynamodb:us-east-1:000000000000:table/t"]


def test_non_matching_events_are_accepted_but_not_delivered(bus: LocalEventBus) -> None:
    client = events_client(bus.url)
    response = client.put_events(
        Entries=[entry("ExecutionStatusChanged"), entry(source="someone-else"), entry("nodeexecutionqueued")]
    )
    assert response["FailedEntryCount"] == 0
    assert all("EventId" in e for e in response["Entries"])
    assert bus.wait_idle(10)
    assert records() == []
    assert (bus.published, bus.delivered, bus.unmatched) == (3, 0, 3)


def test_default_bus_events_do_not_reach_rules_of_the_app_bus(bus: LocalEventBus) -> None:
    item = {**entry(), "EventBusName": "default"}
    assert bus.put_events([item])["FailedEntryCount"] == 0
    assert bus.wait_idle(10)
    assert records() == []


def test_redeliver_gives_every_event_three_deliveries_interleaved(app: AppTemplate) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def on_delivery(delivery: Delivery) -> None:
        with lock:
            seen.append(delivery.event["id"])

    with LocalEventBus(
        app, bus_names={"Bus": BUS_NAME}, redeliver=2, seed=7, concurrency=1, on_delivery=on_delivery
    ) as local_bus:
        client = events_client(local_bus.url)
        ids = [
            result["EventId"]
            for batch in (range(5), range(5, 10))
            for result in client.put_events(Entries=[entry(seq=i) for i in batch])["Entries"]
        ]
        assert local_bus.wait_idle(10)

    counts = Counter(r["event"]["id"] for r in records())
    assert set(counts) == set(ids)
    assert set(counts.values()) == {3}
    assert local_bus.delivered == 30
    # Each copy gets its own invocation (its own request id).
    assert len({r["request_id"] for r in records()}) == 30
    assert seen != sorted(seen, key=seen.index)  # not grouped: duplicates interleave with other events


def test_a_raising_handler_is_retried_then_dead_lettered(bus: LocalEventBus) -> None:
    response = events_client(bus.url).put_events(Entries=[entry("Boom", step="explode")])
    assert response["FailedEntryCount"] == 0
    assert bus.wait_idle(10)

    attempts = records("FAIL_FILE")
    assert len(attempts) == 3  # the first try and two retries
    assert {a["id"] for a in attempts} == {response["Entries"][0]["EventId"]}
    [letter] = bus.dead_letters
    assert letter.function == "Failing"
    assert letter.rule == "Boom"
    assert letter.attempts == 3
    assert "boom" in letter.error
    assert letter.event["detail"] == {"step": "explode"}
    assert (bus.delivered, bus.failed, bus.retried) == (0, 1, 2)


def test_handler_publishing_from_inside_a_delivery(bus: LocalEventBus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, bus.url)
    response = events_client(bus.url).put_events(Entries=[entry("Relay", execution_id="e9")])
    assert bus.wait_idle(10)  # idle only once the relayed event was delivered too
    [record] = records()
    assert record["event"]["detail"] == {"relayed_from": response["Entries"][0]["EventId"], "execution_id": "e9"}
    assert (bus.published, bus.delivered) == (2, 2)


def test_wait_idle_waits_for_deliveries_in_flight(app: AppTemplate) -> None:
    release = threading.Event()

    def hold(delivery: Delivery) -> None:
        release.wait(10)  # keeps the delivery in flight

    with LocalEventBus(app, bus_names={"Bus": BUS_NAME}, on_delivery=hold) as local_bus:
        local_bus.put_events([entry()])
        assert local_bus.wait_idle(0.2) is False
        release.set()
        assert local_bus.wait_idle(10) is True
    assert len(records()) == 1


def test_stop_leaves_no_threads_behind(app: AppTemplate) -> None:
    before = set(threading.enumerate())
    local_bus = LocalEventBus(app, bus_names={"Bus": BUS_NAME}, concurrency=4).start()
    client = events_client(local_bus.url)
    client.put_events(Entries=[entry(seq=i) for i in range(3)])  # leaves a keep-alive connection open
    assert local_bus.wait_idle(10)
    local_bus.stop(timeout=10)

    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert [t for t in left if not t.daemon] == []
    assert left == []
    with pytest.raises(RuntimeError):
        local_bus.start()


def test_entry_errors_are_reported_per_entry(bus: LocalEventBus) -> None:
    client = events_client(bus.url)
    response = client.put_events(
        Entries=[
            entry(),
            {**entry(), "Detail": "not json"},
            {**entry(), "Detail": "[1, 2]"},
            {**entry(), "EventBusName": "no-such-bus"},
            {**entry(), "Detail": json.dumps({"blob": "x" * MAX_ENTRY_BYTES})},
        ]
    )
    codes = [e.get("ErrorCode") for e in response["Entries"]]
    assert codes == [None, "MalformedDetail", "MalformedDetail", "ResourceNotFoundException", "ValidationException"]
    assert response["FailedEntryCount"] == 4
    assert bus.wait_idle(10)
    assert len(records()) == 1


def test_bus_arn_is_accepted_as_bus_name(bus: LocalEventBus) -> None:
    arn = f"arn:aws:events:us-east-1:000000000000:event-bus/{BUS_NAME}"
    assert bus.put_events([{**entry(), "EventBusName": arn}])["FailedEntryCount"] == 0
    assert bus.wait_idle(10)
    assert len(records()) == 1


def test_more_than_ten_entries_is_a_validation_error(bus: LocalEventBus) -> None:
    with pytest.raises(ClientError) as caught:
        events_client(bus.url).put_events(Entries=[entry(seq=i) for i in range(11)])
    assert caught.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("method", "headers", "body", "error_type"),
    [
        ("POST", {"X-Amz-Target": "AWSEvents.ListRules"}, b"{}", "UnknownOperationException"),
        ("POST", {}, b"{}", "UnknownOperationException"),
        ("POST", {"X-Amz-Target": "AWSEvents.PutEvents"}, b"{nope", "SerializationException"),
        ("POST", {"X-Amz-Target": "AWSEvents.PutEvents"}, b'{"Entries": "x"}', "ValidationException"),
        ("GET", {}, None, "UnknownOperationException"),
    ],
)
def test_anything_else_is_a_json_400(
    bus: LocalEventBus, method: str, headers: dict[str, str], body: bytes | None, error_type: str
) -> None:
    request = urllib.request.Request(bus.url + "/", data=body, method=method, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert caught.value.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(caught.value.read())["__type"] == error_type


def test_handler_file_missing_fails_at_start(app: AppTemplate) -> None:
    (app.functions["Recorder"].code_dir / "app.py").unlink()
    local_bus = LocalEventBus(app, serve_http=False)
    with pytest.raises(ImportError, match="Recorder"):
        local_bus.start()
    local_bus.stop()


def test_without_http_put_events_directly(app: AppTemplate) -> None:
    with LocalEventBus(app, bus_names={"Bus": BUS_NAME}, serve_http=False) as local_bus:
        answer = local_bus.put_events([entry()])
        assert answer["FailedEntryCount"] == 0
        assert local_bus.wait_idle(10)
    assert len(records()) == 1


# --- the pattern matcher -------------------------------------------------------------------------------------

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "1",
    "source": "agentflow",
    "detail-type": "NodeExecutionQueued",
    "account": "000000000000",
    "region": "us-east-1",
    "time": "2024-01-01T00:00:00Z",
    "resources": ["arn:aws:s3:::bucket-a", "arn:aws:s3:::bucket-b"],
    "detail": {
        "execution_id": "exec-123",
        "seq": 3,
        "price": 10.5,
        "flag": True,
        "nothing": None,
        "ip": "10.0.0.7",
        "tags": ["red", "green"],
        "node": {"id": "n1", "status": "QUEUED"},
        "items": [{"kind": "a"}, {"kind": "b"}],
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({}, True),
        ({"source": ["agentflow"]}, True),
        ({"source": ["other", "agentflow"]}, True),
        ({"source": ["other"]}, False),
        ({"source": ["agentflow"], "detail-type": ["NodeExecutionQueued"]}, True),
        ({"source": ["agentflow"], "detail-type": ["ExecutionStatusChanged"]}, False),
        ({"detail": {"execution_id": ["exec-123"]}}, True),
        ({"detail": {"node": {"status": ["QUEUED"]}}}, True),
        ({"detail": {"node": {"status": ["RUNNING"]}}}, False),
        ({"detail": {"seq": [3]}}, True),
        ({"detail": {"seq": [3.0]}}, True),
        ({"detail": {"seq": ["3"]}}, False),
        ({"detail": {"flag": [True]}}, True),
        ({"detail": {"flag": [1]}}, False),
        ({"detail": {"nothing": [None]}}, True),
        ({"detail": {"missing": [None]}}, False),
        ({"detail": {"execution_id": [{"prefix": "exec-"}]}}, True),
        ({"detail": {"execution_id": [{"prefix": "run-"}]}}, False),
        ({"detail": {"execution_id": [{"prefix": {"equals-ignore-case": "EXEC-"}}]}}, True),
        ({"detail": {"execution_id": [{"suffix": "-123"}]}}, True),
        ({"detail": {"execution_id": [{"equals-ignore-case": "EXEC-123"}]}}, True),
        ({"detail": {"execution_id": [{"anything-but": "exec-123"}]}}, False),
        ({"detail": {"execution_id": [{"anything-but": ["x", "y"]}]}}, True),
        ({"detail": {"execution_id": [{"anything-but": {"prefix": "exec"}}]}}, False),
        ({"detail": {"execution_id": [{"anything-but": {"prefix": "run"}}]}}, True),
        ({"detail": {"missing": [{"anything-but": "x"}]}}, False),
        ({"detail": {"seq": [{"anything-but": [1, 2]}]}}, True),
        ({"detail": {"execution_id": [{"exists": True}]}}, True),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"execution_id": [{"exists": False}]}}, False),
        ({"detail": {"missing": [{"exists": True}]}}, False),
        ({"detail": {"seq": [{"numeric": [">", 0, "<=", 3]}]}}, True),
        ({"detail": {"seq": [{"numeric": [">", 3]}]}}, False),
        ({"detail": {"price": [{"numeric": ["=", 10.5]}]}}, True),
        ({"detail": {"execution_id": [{"numeric": [">", 0]}]}}, False),
        ({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}, True),
        ({"detail": {"ip": [{"cidr": "10.0.1.0/24"}]}}, False),
        ({"detail": {"execution_id": [{"wildcard": "exec-*3"}]}}, True),
        ({"detail": {"execution_id": [{"wildcard": "run-*"}]}}, False),
        ({"detail": {"tags": ["green"]}}, True),
        ({"detail": {"tags": ["blue"]}}, False),
        ({"resources": [{"suffix": "bucket-b"}]}, True),
        ({"detail": {"items": {"kind": ["b"]}}}, True),
        ({"detail": {"items": {"kind": ["c"]}}}, False),
        ({"detail": {"node": ["n1"]}}, False),  # an object is not a leaf value
        ({"$or": [{"source": ["x"]}, {"detail": {"seq": [3]}}]}, True),
        ({"$or": [{"source": ["x"]}, {"detail": {"seq": [4]}}]}, False),
        ({"detail": {"$or": [{"seq": [4]}, {"node": {"id": ["n1"]}}]}}, True),
    ],
)
def test_event_patterns(pattern: dict[str, Any], expected: bool) -> None:
    validate_pattern(pattern)
    assert event_matches(pattern, EVENT) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": "agentflow"},
        {"source": []},
        {"source": [{"prefix": "a", "suffix": "b"}]},
        {"detail": {"seq": [{"numeric": [">>", 1]}]}},
        {"detail": {"seq": [{"numeric": [">", "1"]}]}},
        {"detail": {"seq": [{"bogus": 1}]}},
        {"detail": {"seq": [{"exists": "yes"}]}},
        {"detail": {"ip": [{"cidr": "not-a-net"}]}},
        {"$or": [{"source": ["a"]}]},
    ],
)
def test_invalid_patterns_are_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(PatternError):
        validate_pattern(pattern)
