"""Settings read from the environment, the same names in Lambda (template.yaml) and on the local stack."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    table_name: str
    event_bus_name: str
    max_attempts: int = 3  # claims of one node execution before it fails (crashed or timed-out workers)
    default_lease_seconds: float = 300.0  # the node executor's timeout in template.yaml
    max_value_bytes: int = 300_000  # a node's inputs or outputs must fit one DynamoDB item (400 KB)

    @staticmethod
    def from_env() -> Settings:
        try:
            table, bus = os.environ["TABLE_NAME"], os.environ["EVENT_BUS_NAME"]
        except KeyError as missing:
            raise RuntimeError(f"environment variable {missing} is not set (see template.yaml)") from None
        return Settings(
            table_name=table,
            event_bus_name=bus,
            max_attempts=int(os.environ.get("AGENTFLOW_MAX_ATTEMPTS", "3")),
        )
