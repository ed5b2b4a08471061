"""The local stack (DESIGN §9): DynamoDB Local, the local event bus and the functions of template.yaml,
wired the way the template wires them, in one process with no cloud account and no Docker."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agentflow.executor import Engine
from agentflow.local.bus import LocalEventBus
from agentflow.local.dynamodb import DynamoDBLocal, client_for, ensure_table
from agentflow.local.template import AppTemplate, load_template, resolve_environment
from agentflow.wiring import engine_from_env

TABLE_NAME = "agentflow"
LOCAL_STACK_NAME = "agentflow-local"
BUS_NAME = "agentflow-local-bus"
DYNAMODB_ENDPOINT_ENV = "AGENTFLOW_DYNAMODB_ENDPOINT"  # use a running DynamoDB Local instead of starting one


def local_dir(root: Path) -> Path:
    """Where the local stack keeps its data and files: AGENTFLOW_LOCAL_DIR, else <root>/.local (git-ignored)."""
    configured = os.environ.get("AGENTFLOW_LOCAL_DIR")
    return Path(configured).resolve() if configured else root / ".local"


def local_refs(table_name: str, bus_name: str) -> dict[str, str]:
    """What template.yaml's !Ref / !GetAtt / pseudo parameters mean on the local stack."""
    return {
        "Table": table_name,
        "EventBus": bus_name,
        "ScheduleGroup": f"{LOCAL_STACK_NAME}-schedules",
        "ScheduledRunFunction.Arn": f"arn:aws:lambda:us-east-1:000000000000:function:{LOCAL_STACK_NAME}-run",
        "SchedulerRole.Arn": f"arn:aws:iam::000000000000:role/{LOCAL_STACK_NAME}-scheduler",
        "AWS::StackName": LOCAL_STACK_NAME,
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "000000000000",
        "AWS::Partition": "aws",
    }


@dataclass
class LocalStackConfig:
    root: Path
    data_dir: Path | None = None  # None: in memory; default for users: <root>/.local/dynamodb
    dynamodb_endpoint: str | None = None
    table_name: str = TABLE_NAME
    bus_name: str = BUS_NAME
    redeliver: int = 0
    concurrency: int = 8
    seed: int | None = None
    log_level: str | None = None  # overrides the template's LOG_LEVEL for the functions (the CLI keeps quiet)

    @staticmethod
    def for_user(root: Path, **overrides: object) -> LocalStackConfig:
        config = LocalStackConfig(
            root=root,
            data_dir=local_dir(root) / "dynamodb",
            dynamodb_endpoint=os.environ.get(DYNAMODB_ENDPOINT_ENV) or None,
            table_name=os.environ.get("AGENTFLOW_TABLE", TABLE_NAME),
        )
        for name, value in overrides.items():
            setattr(config, name, value)
        return config


class LocalStack:
    def __init__(self, config: LocalStackConfig) -> None:
        self.config = config
        self.template: AppTemplate = load_template(config.root / "template.yaml")
        self.dynamodb: DynamoDBLocal | None = None
        self.bus: LocalEventBus | None = None
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the local stack is not started")
        return self._engine

    @property
    def dynamodb_endpoint(self) -> str:
        if self.config.dynamodb_endpoint:
            return self.config.dynamodb_endpoint
        assert self.dynamodb is not None
        return self.dynamodb.endpoint

    def start(self) -> LocalStack:
        config = self.config
        if not config.dynamodb_endpoint:
            self.dynamodb = DynamoDBLocal(config.root, config.data_dir).start()
        try:
            table = self.template.resources["Table"]["Properties"]
            ensure_table(client_for(self.dynamodb_endpoint), config.table_name, table)
            refs = local_refs(config.table_name, config.bus_name)
            self.bus = LocalEventBus(
                self.template,
                bus_names={"EventBus": config.bus_name},
                concurrency=config.concurrency,
                redeliver=config.redeliver,
                seed=config.seed,
            )
            # The functions read their settings from the environment, as in Lambda. They share this process.
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_endpoint
            os.environ["AWS_ENDPOINT_URL_EVENTBRIDGE"] = self.bus.url  # botocore: AWS_ENDPOINT_URL_<service id>
            for spec in self.template.functions.values():
                os.environ.update(resolve_environment(spec.environment, refs))
            os.environ["AGENTFLOW_SCHEDULER"] = "local"  # the stack fires stored schedules itself
            # EMF metrics are CloudWatch's; locally they would only print JSON into the user's terminal
            os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
            if config.log_level:
                os.environ["LOG_LEVEL"] = config.log_level
                os.environ["POWERTOOLS_LOG_LEVEL"] = config.log_level
            self.bus.start()
            self._engine = engine_from_env()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.stop()
            self.bus = None
        if self.dynamodb is not None:
            self.dynamodb.stop()
            self.dynamodb = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
