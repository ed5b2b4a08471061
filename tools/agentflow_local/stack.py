"""The local stack (README, "The local stack"): DynamoDB Local, the local event bus and the functions of
template.yaml, wired the way the template wires them, in one process with no cloud account and no Docker."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from agentflow.clock import Clock, system_clock
from agentflow.config import Settings, env_number
from agentflow.executor import Engine, SweepReport
from agentflow.runtime import Runtime, build_runtime
from agentflow.store.dynamo import CLIENT_CONFIG
from agentflow_local.bus import LocalEventBus
from agentflow_local.dynamodb import DynamoDBLocal, client_for, ensure_table
from agentflow_local.files import LocalFiles, running_dynamodb_endpoint
from agentflow_local.metrics import file_metrics
from agentflow_local.queues import LocalQueues
from agentflow_local.template import AppTemplate, load_template, resolve_environment

TABLE_NAME = "agentflow"
LOCAL_STACK_NAME = "agentflow-local"
BUS_NAME = "agentflow-local-bus"
DYNAMODB_ENDPOINT_ENV = "AGENTFLOW_DYNAMODB_ENDPOINT"  # use a running DynamoDB Local instead of starting one
RETENTION_ENV = "AGENTFLOW_RETENTION_DAYS"
HTTP_ALLOW_HOSTS_ENV = "AGENTFLOW_HTTP_ALLOW_HOSTS"


def local_refs(table_name: str, bus_name: str, parameters: Mapping[str, str] | None = None) -> dict[str, str]:
    """What template.yaml's !Ref / !GetAtt / pseudo parameters (and its `parameters`) mean on the local stack."""
    return {
        **(parameters or {}),
        "Table": table_name,
        "EventBus": bus_name,
        "ScheduleGroup": f"{LOCAL_STACK_NAME}-schedules",
        "ScheduledRunFunction.Arn": f"arn:aws:lambda:us-east-1:000000000000:function:{LOCAL_STACK_NAME}-run",
        "SchedulerRole.Arn": f"arn:aws:iam::000000000000:role/{LOCAL_STACK_NAME}-scheduler",
        "CredentialsKey.Arn": "arn:aws:kms:us-east-1:000000000000:key/local",  # unused: the key file wins locally
        "AWS::StackName": LOCAL_STACK_NAME,
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "000000000000",
        "AWS::Partition": "aws",
    }


# Read from the environment `agentflow run` / `agentflow serve` runs in, as a deployment reads its parameters
PASSED_THROUGH = (
    "AGENTFLOW_LLM_TIMEOUT",
    "AGENTFLOW_LLM_PRICES",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH",
)


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
    clock: Clock = system_clock  # the functions' clock: tests set it to control time
    metrics_file: Path | None = None  # where the functions' EMF metrics go (users: <local dir>/metrics.jsonl)
    recover: bool | None = None  # sweep at once on start; default: when this stack runs its own DynamoDB Local
    retention_days: float | None = None  # overrides template.yaml's RetentionDays (users: AGENTFLOW_RETENTION_DAYS)
    environment: Mapping[str, str] = field(default_factory=dict)  # set last in the functions' environment (tests)
    http_allow_hosts: str | None = None  # overrides template.yaml's HttpAllowHosts (users: AGENTFLOW_HTTP_ALLOW_HOSTS)
    credentials_key_file: Path | None = None  # the local keyring (users: <local dir>/credentials.key); see key_file

    @staticmethod
    def for_user(root: Path, **overrides: object) -> LocalStackConfig:
        files = LocalFiles(root)
        config = LocalStackConfig(
            root=root,
            data_dir=files.folder / "dynamodb",
            # a running `agentflow serve` holds the data folder: share its DynamoDB Local
            dynamodb_endpoint=os.environ.get(DYNAMODB_ENDPOINT_ENV) or running_dynamodb_endpoint(files),
            table_name=os.environ.get("AGENTFLOW_TABLE", TABLE_NAME),
            metrics_file=files.metrics,
            retention_days=env_number(os.environ, RETENTION_ENV, minimum=0),
            http_allow_hosts=os.environ.get(HTTP_ALLOW_HOSTS_ENV),
            credentials_key_file=files.credentials_key,
        )
        for name, value in overrides.items():
            setattr(config, name, value)
        return config


def _local_client(service: str, url: str) -> Any:
    """A boto3 client for one of the stack's own endpoints (the bus, the queues)."""
    return boto3.client(  # type: ignore[call-overload]  # `service` is one of two literals, not one
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=CLIENT_CONFIG,
    )


class LocalStack:
    def __init__(self, config: LocalStackConfig) -> None:
        self.config = config
        self.template: AppTemplate = load_template(config.root / "template.yaml")
        self.dynamodb: DynamoDBLocal | None = None
        self.bus: LocalEventBus | None = None
        self.queues: LocalQueues | None = None
        self._runtime: Runtime | None = None
        self.recovered: SweepReport | None = None  # the start-up recovery sweep's report, when one ran
        self._key_dir: Path | None = None  # a temporary folder for the credentials key, removed on stop

    def key_file(self) -> Path:
        """The local keyring's file: the configured one, else one beside the data (in the data folder, or in a
        temporary folder for an in-memory DynamoDB, whose credentials go with it)."""
        if self.config.credentials_key_file is not None:
            return self.config.credentials_key_file
        if self.config.data_dir is not None:
            return self.config.data_dir / "credentials.key"
        if self._key_dir is None:
            self._key_dir = Path(tempfile.mkdtemp(prefix="agentflow-keys-"))
        return self._key_dir / "credentials.key"

    @property
    def runtime(self) -> Runtime:
        """What the stack's functions run with: pass it to anything that loads a handler."""
        if self._runtime is None:
            raise RuntimeError("the local stack is not started")
        return self._runtime

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def metrics_file(self) -> Path | None:
        return self.config.metrics_file

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
            self.bus = LocalEventBus(
                self.template,
                bus_names={"EventBus": config.bus_name},
                concurrency=config.concurrency,
                redeliver=config.redeliver,
                seed=config.seed,
            )
            self.queues = LocalQueues(
                self.template,
                clock=config.clock,
                concurrency=config.concurrency,
                redeliver=config.redeliver,
                seed=config.seed,
            )
            self._runtime = build_runtime(
                Settings.from_env(self._environment()),
                clock=config.clock,
                dynamodb=client_for(self.dynamodb_endpoint),
                events_client=_local_client("events", self.bus.url),
                sqs=_local_client("sqs", self.queues.url),
                metrics_factory=file_metrics(self.metrics_file),
                log_stream=sys.stderr,  # stdout is the CLI's: `agentflow run --json` prints one document there
            )
            self.bus.start(self._runtime)
            self.queues.start(self._runtime)
            recover = config.recover if config.recover is not None else self._owns_data()
            if recover:
                # Whatever a previous process of this data folder left (it crashed, or was killed) goes on now,
                # not when the sweeper's stale thresholds pass: no other process can hold its leases.
                self.recovered = self.engine.recover_abandoned()
        except BaseException:
            self.stop()
            raise
        return self

    def _environment(self) -> dict[str, str]:
        """The functions' environment: template.yaml's, with the local names of its resources and parameters."""
        config = self.config
        assert self.queues is not None
        refs = local_refs(config.table_name, config.bus_name, self.template.parameter_defaults())
        refs.update(self.queues.refs())
        if config.retention_days is not None:
            refs["RetentionDays"] = f"{config.retention_days:g}"
        if config.http_allow_hosts is not None:
            refs["HttpAllowHosts"] = config.http_allow_hosts
        environment: dict[str, str] = {}
        for spec in self.template.functions.values():
            environment.update(resolve_environment(spec.environment, refs))
        environment["AGENTFLOW_SCHEDULER"] = "local"  # the stack fires stored schedules itself
        environment["AGENTFLOW_CREDENTIALS_KEY_FILE"] = str(self.key_file())  # the local keyring, not KMS
        if config.log_level:
            environment["LOG_LEVEL"] = config.log_level
        for name in PASSED_THROUGH:  # the user's own settings, over template.yaml's parameter defaults
            if os.environ.get(name):
                environment[name] = os.environ[name]
        environment.update(config.environment)
        return environment

    def idle(self, timeout: float = 0.0) -> bool:
        """Nothing in flight on the bus or the queues (a retry waiting for its delay is not in flight)."""
        bus, queues = self.bus, self.queues
        return (bus is None or bus.wait_idle(timeout)) and (queues is None or queues.wait_idle(timeout))

    def waiting_retries(self) -> int:
        """Delayed attempts not yet due on the stack's clock."""
        return 0 if self.queues is None else self.queues.pending_delayed()

    def _owns_data(self) -> bool:
        return self.dynamodb is not None and self.dynamodb.data_dir is not None

    def stop(self) -> None:
        if self.queues is not None:  # first: its handlers publish to the bus
            self.queues.stop()
            self.queues = None
        if self.bus is not None:
            self.bus.stop()
            self.bus = None
        if self.dynamodb is not None:
            self.dynamodb.stop()
            self.dynamodb = None
        if self._key_dir is not None:
            shutil.rmtree(self._key_dir, ignore_errors=True)
            self._key_dir = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
