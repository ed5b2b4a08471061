"""Reading SAM templates for the local stack: short tags, Globals, events, environment resolution."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentflow_local.lambda_runtime import FakeLambdaContext, HandlerLoadError, invoke, load_handler
from agentflow_local.template import (
    ApiRoute,
    EventRule,
    QueueEvent,
    ScheduleEvent,
    TemplateError,
    load_template,
    resolve_environment,
)

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Timeout: 30
    Layers:
      - !Ref Layer
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        BUS_ARN: !GetAtt Bus.Arn
        SHARED: from-globals
        OVERRIDDEN: from-globals
  Api:
    Auth:
      ApiKeyRequired: true
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-table"
      Tags:
        - Key: joined
          Value: !Join ["-", [a, !Ref AWS::Region]]
        - Key: picked
          Value: !Select [0, !GetAZs ""]
        - Key: chosen
          Value: !If [IsProd, !Ref AWS::NoValue, "x"]
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub ${AWS::StackName}-bus
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.lambda_handler
      MemorySize: 1024
      Layers:
        - arn:aws:lambda:us-east-1:123456789012:layer:extra:1
      Environment:
        Variables:
          OVERRIDDEN: from-function
          QUEUE: !Sub "${Bus}-queue"
          FLAG: true
          COUNT: 3
      Events:
        Queued:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [agentflow]
              detail-type: [NodeExecutionQueued]
        DefaultBus:
          Type: CloudWatchEvent
          Properties:
            Pattern:
              source: [aws.s3]
        Sweep:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
        Nightly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 3 * * ? *)
            State: DISABLED
            Input: '{"kind": "nightly"}'
        ListGraphs:
          Type: Api
          Properties:
            Path: /graphs
            Method: get
        Webhook:
          Type: Api
          Properties:
            Path: /webhooks/{wid}
            Method: post
            Auth:
              ApiKeyRequired: false
        Queue:
          Type: SQS
          Properties:
            Queue: arn:aws:sqs:us-east-1:123456789012:q
  Bare:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: bare/
      Handler: pkg.handlers.main
"""


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return path


def test_short_tags_load_as_long_form(template_path: Path) -> None:
    template = load_template(template_path)
    table = template.resources["Table"]["Properties"]
    assert table["TableName"] == {"Fn::Sub": "${AWS::StackName}-table"}
    tags = {t["Key"]: t["Value"] for t in table["Tags"]}
    assert tags["joined"] == {"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}]]}
    assert tags["picked"] == {"Fn::Select": [0, {"Fn::GetAZs": ""}]}
    assert tags["chosen"] == {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, "x"]}
    worker = template.functions["Worker"]
    assert worker.environment["TABLE_NAME"] == {"Ref": "Table"}
    assert worker.environment["BUS_ARN"] == {"Fn::GetAtt": ["Bus", "Arn"]}  # "!GetAtt A.B" splits on the dot
    assert worker.environment["QUEUE"] == {"Fn::Sub": "${Bus}-queue"}


def test_globals_merge_into_functions(template_path: Path) -> None:
    template = load_template(template_path)
    worker, bare = template.functions["Worker"], template.functions["Bare"]
    assert worker.environment["SHARED"] == "from-globals"
    assert worker.environment["OVERRIDDEN"] == "from-function"  # the function wins
    assert bare.environment == {
        "TABLE_NAME": {"Ref": "Table"},
        "BUS_ARN": {"Fn::GetAtt": ["Bus", "Arn"]},
        "SHARED": "from-globals",
        "OVERRIDDEN": "from-globals",
    }
    assert (worker.timeout, worker.memory) == (30, 1024)
    assert (bare.timeout, bare.memory) == (30, 128)  # SAM's default memory
    assert worker.code_dir == template_path.parent / "worker"
    assert (worker.handler_module, worker.handler_function) == ("app", "lambda_handler")
    assert (bare.handler_module, bare.handler_function) == ("pkg.handlers", "main")
    assert bare.handler_path == template_path.parent / "bare" / "pkg" / "handlers.py"


def test_events_are_read(template_path: Path) -> None:
    template = load_template(template_path)
    worker = template.functions["Worker"]
    assert worker.event_rules == (
        EventRule("Queued", "Bus", {"source": ["agentflow"], "detail-type": ["NodeExecutionQueued"]}),
        EventRule("DefaultBus", "default", {"source": ["aws.s3"]}),
    )
    assert worker.schedules == (
        ScheduleEvent("Sweep", "rate(1 minute)"),
        ScheduleEvent("Nightly", "cron(0 3 * * ? *)", enabled=False, input='{"kind": "nightly"}'),
    )
    # Globals.Api requires an API key; the webhook route opts out.
    assert worker.api_routes == (
        ApiRoute("/graphs", "GET", "ListGraphs", auth=True),
        ApiRoute("/webhooks/{wid}", "POST", "Webhook", auth=False),
    )
    assert template.resources_of_type("AWS::Events::EventBus") == ["Bus"]


def test_rules_for(template_path: Path) -> None:
    template = load_template(template_path)
    [(spec, rule)] = template.rules_for("agentflow", "NodeExecutionQueued")
    assert (spec.logical_id, rule.name) == ("Worker", "Queued")
    assert template.rules_for("agentflow", "ExecutionStatusChanged") == []
    assert [r.name for _, r in template.rules_for("aws.s3", "Object Created", bus="default")] == ["DefaultBus"]


def test_resolve_environment_substitutes_refs(template_path: Path) -> None:
    worker = load_template(template_path).functions["Worker"]
    refs = {"Table": "local-table", "Bus": "local-bus", "Bus.Arn": "arn:aws:events:us-east-1:0:event-bus/local-bus"}
    assert resolve_environment(worker.environment, refs) == {
        "TABLE_NAME": "local-table",
        "BUS_ARN": "arn:aws:events:us-east-1:0:event-bus/local-bus",
        "SHARED": "from-globals",
        "OVERRIDDEN": "from-function",
        "QUEUE": "local-bus-queue",
        "FLAG": "true",
        "COUNT": "3",
    }


def test_resolve_environment_refuses_an_unknown_ref() -> None:
    with pytest.raises(TemplateError, match=r"TABLE_NAME.*'Table'.*known: Bus"):
        resolve_environment({"TABLE_NAME": {"Ref": "Table"}}, {"Bus": "b"})
    with pytest.raises(TemplateError, match="cannot resolve"):
        resolve_environment({"X": {"Fn::ImportValue": "other-stack"}}, {})


def test_resolve_environment_sub_forms() -> None:
    refs = {"AWS::Region": "us-east-1"}
    env = {
        "A": {"Fn::Sub": "${AWS::Region}-${!Literal}"},
        "B": {"Fn::Sub": ["${Name}/x", {"Name": {"Ref": "AWS::Region"}}]},
        "C": {"Fn::Join": [":", ["a", {"Ref": "AWS::Region"}]]},
    }
    assert resolve_environment(env, refs) == {"A": "us-east-1-${Literal}", "B": "us-east-1/x", "C": "a:us-east-1"}


def test_bad_templates_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources: [1, 2]\n")
    with pytest.raises(TemplateError, match="not a CloudFormation template"):
        load_template(path)
    path.write_text(
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: f/, Handler: x}\n"
    )
    with pytest.raises(TemplateError, match=r"module\.function"):
        load_template(path)
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yaml")


def test_load_handler_imports_each_function_under_its_own_name(template_path: Path) -> None:
    root = template_path.parent
    for name in ("worker", "bare"):
        (root / name).mkdir()
    (root / "worker" / "app.py").write_text(
        "def lambda_handler(event, context):\n"
        "    return {'who': 'worker', 'event': event, 'fn': context.function_name,\n"
        "            'left': context.get_remaining_time_in_millis(), 'id': context.aws_request_id}\n"
    )
    (root / "bare" / "pkg").mkdir()
    (root / "bare" / "pkg" / "handlers.py").write_text("def main(event, context):\n    return 'bare'\n")
    template = load_template(template_path)
    worker = template.functions["Worker"]
    handler = load_handler(worker)
    first, second = invoke(worker, handler, {"n": 1}), invoke(worker, handler, {"n": 2})
    assert first["who"] == "worker" and first["event"] == {"n": 1} and first["fn"] == "Worker"
    assert 29_000 < first["left"] <= 30_000
    assert first["id"] != second["id"]  # a fresh request id per invocation
    assert load_handler(template.functions["Bare"])({}, None) == "bare"

    (root / "worker" / "app.py").write_text("handler = 1\n")
    with pytest.raises(HandlerLoadError, match="no callable 'lambda_handler'"):
        load_handler(worker)
    (root / "worker" / "app.py").write_text("raise RuntimeError('import-time failure')\n")
    with pytest.raises(HandlerLoadError, match="import-time failure"):
        load_handler(worker)


def test_fake_context_counts_down() -> None:
    context = FakeLambdaContext("Fn", timeout=0.05, memory_limit_in_mb=512, region="eu-west-1", account="1" * 12)
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:111111111111:function:Fn"
    assert 0 < context.get_remaining_time_in_millis() <= 50
    time.sleep(0.06)
    assert context.get_remaining_time_in_millis() == 0


# --- SQS events ----------------------------------------------------------------------------------------------

SQS_TEMPLATE = """
Resources:
  RetryQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
  NodeRetryFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/node_retry/
      Handler: app.lambda_handler
      Timeout: 300
      Environment:
        Variables:
          RETRY_QUEUE_URL: !Ref RetryQueue
      Events:
        Retry:
          Type: SQS
          Properties:
            Queue: !GetAtt RetryQueue.Arn
            BatchSize: 10
            FunctionResponseTypes:
              - ReportBatchItemFailures
        Paused:
          Type: SQS
          Properties:
            Queue: !Ref RetryQueue
            Enabled: false
  Auditor:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: auditor/
      Handler: app.lambda_handler
      Events:
        Audit:
          Type: SQS
          Properties:
            Queue: !GetAtt RetryQueue.Arn
            BatchSize: 250
"""


def test_sqs_events_are_read(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(SQS_TEMPLATE)
    template = load_template(path)
    retry = template.functions["NodeRetryFunction"]
    assert retry.queue_events == (
        QueueEvent("Retry", "RetryQueue", batch_size=10, report_batch_item_failures=True),
        QueueEvent("Paused", "RetryQueue", batch_size=10, report_batch_item_failures=False, enabled=False),
    )
    assert (retry.event_rules, retry.api_routes, retry.schedules) == ((), (), ())
    assert [(spec.logical_id, event.name, event.batch_size) for spec, event in template.queue_targets()] == [
        ("NodeRetryFunction", "Retry", 10),
        ("NodeRetryFunction", "Paused", 10),
        ("Auditor", "Audit", 250),
    ]
    # `!Ref` of a queue is its URL: the local stack passes the local queue's URL in refs.
    refs = {"RetryQueue": "http://127.0.0.1:4566/000000000000/RetryQueue"}
    assert resolve_environment(retry.environment, refs) == {"RETRY_QUEUE_URL": refs["RetryQueue"]}


def test_a_literal_queue_arn_is_kept_as_written(template_path: Path) -> None:
    worker = load_template(template_path).functions["Worker"]
    assert worker.queue_events == (QueueEvent("Queue", "arn:aws:sqs:us-east-1:123456789012:q"),)
    assert load_template(template_path).functions["Bare"].queue_events == ()


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("Queue: !GetAtt Q.Arn\n            BatchSize: 0", "BatchSize must be between 1 and 10000"),
        ("Queue: !GetAtt Q.Arn\n            BatchSize: 10001", "BatchSize must be between 1 and 10000"),
        ("Queue: !GetAtt Q.Arn\n            BatchSize: ten", "BatchSize must be a number"),
        ('Queue: !Sub "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:q"', "unsupported queue"),
        ("Queue: !GetAtt Q.QueueName", "unsupported queue"),
        ("BatchSize: 5", "unsupported queue None"),
    ],
)
def test_sqs_events_the_local_stack_cannot_read_are_refused(tmp_path: Path, properties: str, message: str) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      CodeUri: f/\n      Handler: app.handler\n      Events:\n        Jobs:\n"
        f"          Type: SQS\n          Properties:\n            {properties}\n"
    )
    with pytest.raises(TemplateError, match=rf"F\.Jobs.*{message}"):
        load_template(path)
