"""The composition root: one function builds everything a function needs (settings, clock, store, engine,
publisher, scheduler port, metrics) and every handler gets it through `current_runtime()`.

In Lambda the runtime is built from the environment at import. The local stack (and tests) build one themselves,
with their own clients, clock and metrics sink, and hand it to the handlers they load with `runtime_override`:
no process-wide environment is rewritten to configure a handler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics

from agentflow.clock import Clock, system_clock
from agentflow.config import Settings
from agentflow.credentials.crypto import keyring_for
from agentflow.credentials.vault import CredentialVault, KeyringFactory
from agentflow.errors import ConfigurationError
from agentflow.events import EventBridgePublisher, EventPublisher
from agentflow.executor import Engine
from agentflow.retries import RetryQueue, SqsRetryQueue
from agentflow.store import Store, dynamodb_client
from agentflow.store.dynamo import CLIENT_CONFIG
from agentflow.triggers.schedules import SchedulerPort, scheduler_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_sqs import SQSClient

MetricsFactory = Callable[[str, str], Metrics]  # (namespace, service) -> metrics


def cloudwatch_metrics(namespace: str, service: str) -> Metrics:
    """Powertools' EMF metrics, printed on stdout, where Lambda hands them to CloudWatch."""
    return Metrics(namespace=namespace, service=service)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    metrics_factory: MetricsFactory = cloudwatch_metrics
    _scheduler: SchedulerPort | None = None
    log_stream: IO[str] | None = None  # None: stdout, where Lambda collects logs; the local stack gives stderr
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def clock(self) -> Clock:
        """The clock everything of this runtime reads: the store's, which stamps every item."""
        return self.engine.store.clock

    def scheduler(self) -> SchedulerPort:
        """The schedule port, made on first use: only the schedule routes and the run function need it."""
        with self._lock:
            if self._scheduler is None:
                self._scheduler = scheduler_for(self.settings)
            return self._scheduler

    def vault(self) -> CredentialVault:
        """Users' credentials: the vault the engine checks and resolves them with."""
        vault = self.engine.credentials
        if not isinstance(vault, CredentialVault):
            raise ConfigurationError("this runtime's engine has no credentials vault (build it with build_runtime)")
        return vault

    def metrics(self, namespace: str) -> Metrics:
        return self.metrics_factory(namespace, self.settings.service_name)

    def logger(self) -> Logger:
        """A handler's structured logger, with the service name and level of the settings."""
        return Logger(service=self.settings.service_name, level=self.settings.log_level, stream=self.log_stream)


def build_runtime(
    settings: Settings | None = None,
    *,
    clock: Clock = system_clock,
    dynamodb: DynamoDBClient | None = None,
    publisher: EventPublisher | None = None,
    events_client: Any = None,
    scheduler: SchedulerPort | None = None,
    metrics_factory: MetricsFactory = cloudwatch_metrics,
    kms: KMSClient | None = None,
    sqs: SQSClient | None = None,
    log_stream: IO[str] | None = None,
) -> Runtime:
    """Clients default to boto3's own resolution (in AWS: the real services; AWS_ENDPOINT_URL_* if set)."""
    settings = settings or Settings.from_env()
    dynamodb = dynamodb or dynamodb_client()
    if publisher is None:
        publisher = EventBridgePublisher(
            events_client or boto3.client("events", config=CLIENT_CONFIG), settings.event_bus_name
        )
    store = Store(dynamodb, settings.table_name, clock=clock)
    vault = CredentialVault(store, credentials_keyring(settings, kms))
    engine = Engine(store, publisher, settings, credentials=vault, retry_queue=retry_queue(settings, sqs))
    return Runtime(settings, engine, metrics_factory, scheduler, log_stream=log_stream)


def retry_queue(settings: Settings, sqs: SQSClient | None = None) -> RetryQueue | None:
    """Delayed attempts go through the SQS queue the settings name (RETRY_QUEUE_URL); without one, a transient
    failure fails its node at once."""
    if not settings.retry_queue_url:
        return None
    return SqsRetryQueue(sqs or boto3.client("sqs", config=CLIENT_CONFIG), settings.retry_queue_url)


def credentials_keyring(settings: Settings, kms: KMSClient | None = None) -> KeyringFactory:
    """The keyring the settings choose, made when first needed (the KMS client too): only creating or resolving a
    credential needs it, so a function that does neither needs no key setting."""

    def kms_client() -> KMSClient:
        return kms or boto3.client("kms", config=CLIENT_CONFIG)

    return lambda: keyring_for(settings.credentials_key_file, settings.credentials_key_id, kms_client)


_overrides: list[Runtime] = []
_overrides_lock = threading.Lock()


def current_runtime() -> Runtime:
    """The runtime a handler module builds at import: the innermost override, else one from the environment."""
    with _overrides_lock:
        if _overrides:
            return _overrides[-1]
    return build_runtime()


@contextmanager
def runtime_override(runtime: Runtime | None) -> Iterator[None]:
    """Handlers imported inside this block use `runtime` (None: no override)."""
    if runtime is None:
        yield
        return
    with _overrides_lock:
        _overrides.append(runtime)
    try:
        yield
    finally:
        with _overrides_lock:
            _overrides.remove(runtime)
