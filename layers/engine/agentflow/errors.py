"""The project's one exception hierarchy: every error agentflow raises on purpose derives from `AgentflowError`,
in the few families callers branch on."""

from __future__ import annotations


class AgentflowError(Exception):
    """Base of every error agentflow raises on purpose."""


class InvalidInput(AgentflowError, ValueError):
    """Bad input from a user (a graph, inputs, a crontab, a request): the message names what is wrong."""


class NotFound(AgentflowError, LookupError):
    """Something asked for does not exist (or is not the caller's)."""


class Conflict(AgentflowError):
    """A change the current state forbids (a status transition, a concurrent update that kept losing)."""


class ConfigurationError(AgentflowError, RuntimeError):
    """The environment or a setting is missing or malformed: the message names it."""


class ResourceLimit(AgentflowError):
    """A DynamoDB, EventBridge or size limit was hit: the message says which and by how much."""


class DeferredRun(AgentflowError):
    """Raised by a block that must wait (CountdownTimerBlock): the engine runs the node execution again once
    `delay_seconds` have passed, through the same delayed queue as retries, and no function waits meanwhile. The
    next run sees `BlockContext.deferrals` one higher; a deferral does not count as an attempt."""

    def __init__(self, delay_seconds: float, reason: str = "waiting") -> None:
        super().__init__(reason)
        self.delay_seconds = delay_seconds


class RetryableError(AgentflowError):
    """A transient failure (HTTP 429/502/503/504, a timeout, a refused connection, a provider's rate limit): the
    engine runs the node execution again later, under its retry policy (docs/architecture.md, "Retries").
    `retry_after` (seconds) is the server's own hint (a `Retry-After` header), honoured up to the policy's cap."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
