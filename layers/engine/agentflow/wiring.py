"""Builds the engine from the environment: the same code path in Lambda and on the local stack.

Endpoints come from boto3's own settings (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_EVENTBRIDGE), which the local
stack sets; in AWS they are unset and boto3 talks to the real services.
"""

from __future__ import annotations

import boto3
from botocore.config import Config

from agentflow.config import Settings
from agentflow.events import EventBridgePublisher
from agentflow.executor import Engine
from agentflow.store import Store

_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64)


def engine_from_env(settings: Settings | None = None) -> Engine:
    settings = settings or Settings.from_env()
    dynamodb = boto3.client("dynamodb", config=_CLIENT_CONFIG)
    events = boto3.client("events", config=_CLIENT_CONFIG)
    return Engine(Store(dynamodb, settings.table_name), EventBridgePublisher(events, settings.event_bus_name), settings)
