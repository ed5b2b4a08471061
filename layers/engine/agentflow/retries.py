"""Retries with backoff (docs/architecture.md, "Retries and timeouts"): the policy of a node (its metadata, else its
graph's, else the settings'), the delay before an attempt (exponential backoff with full jitter, a server's
`Retry-After` honoured up to the cap), and the port through which the delayed attempt is sent (an SQS queue with a
per-message delay in AWS and on the local stack), so no Lambda ever waits out a backoff.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentflow.errors import InvalidInput

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_DELAY_SECONDS = 900  # SQS's longest per-message delay
MAX_ATTEMPTS = 20


class RetryPolicy(BaseModel):
    """How often, and how patiently, a node execution is tried. Any field left out takes the next level's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS)
    initial_delay_seconds: float | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS)
    max_delay_seconds: float | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS)

    def over(self, fallback: ResolvedPolicy) -> ResolvedPolicy:
        """This policy, its missing fields taken from `fallback`."""
        return ResolvedPolicy(
            max_attempts=self.max_attempts if self.max_attempts is not None else fallback.max_attempts,
            initial_delay_seconds=(
                self.initial_delay_seconds if self.initial_delay_seconds is not None else fallback.initial_delay_seconds
            ),
            max_delay_seconds=self.max_delay_seconds
            if self.max_delay_seconds is not None
            else fallback.max_delay_seconds,
        )


@dataclass(frozen=True)
class ResolvedPolicy:
    max_attempts: int = 3
    initial_delay_seconds: float = 2.0
    max_delay_seconds: float = 60.0

    def bound(self, attempt: int) -> float:
        """The longest backoff after failed attempt number `attempt` (1-based): base * 2^(attempt-1), capped."""
        exponent = min(attempt - 1, 60)  # 2**60 seconds is long past any cap
        return min(self.max_delay_seconds, self.initial_delay_seconds * 2.0**exponent)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Full jitter (uniform between 0 and the bound), at least the server's `Retry-After`, at most the cap."""
        jittered = rng.uniform(0.0, self.bound(attempt))
        wanted = max(jittered, retry_after or 0.0)
        return min(wanted, self.max_delay_seconds)


def parse_policy(value: Any, where: str) -> RetryPolicy:
    """A `retry_policy` object from a graph or a node's metadata; InvalidInput naming `where` when malformed."""
    if isinstance(value, RetryPolicy):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be an object with max_attempts, initial_delay_seconds, max_delay_seconds")
    try:
        return RetryPolicy.model_validate(value)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"{where}: {reasons}") from None


@dataclass(frozen=True)
class RetryMessage:
    """One delayed attempt: which node execution, and which attempt it is (so a duplicate runs nothing)."""

    execution_id: str
    node_id: str
    seq: int
    attempt: int

    def to_json(self) -> str:
        return json.dumps(
            {"execution_id": self.execution_id, "node_id": self.node_id, "seq": self.seq, "attempt": self.attempt}
        )


def send_delay(seconds: float) -> int:
    """SQS takes whole seconds: round up, so the message never arrives before the attempt is due."""
    return max(0, min(MAX_DELAY_SECONDS, math.ceil(seconds)))


class RetryQueue(Protocol):
    def send(self, message: RetryMessage, delay_seconds: float) -> None: ...


class SqsRetryQueue:
    """The deployed (and local) transport: one SQS message with DelaySeconds per delayed attempt."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, message: RetryMessage, delay_seconds: float) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url, MessageBody=message.to_json(), DelaySeconds=send_delay(delay_seconds)
        )


@dataclass
class RecordingRetryQueue:
    """Keeps delayed attempts in memory: for unit tests that drive the executor by hand."""

    sent: list[tuple[RetryMessage, float]] = field(default_factory=list)

    def send(self, message: RetryMessage, delay_seconds: float) -> None:
        self.sent.append((message, delay_seconds))

    def take(self) -> list[tuple[RetryMessage, float]]:
        taken, self.sent = self.sent, []
        return taken
