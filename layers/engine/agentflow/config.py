"""Settings: every environment variable the engine and its functions read, in one place (README, Configuration).
The same names in Lambda (set by template.yaml) and on the local stack (which builds Settings itself)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from agentflow.errors import ConfigurationError
from agentflow.llm.settings import LlmSettings
from agentflow.net.policy import HttpPolicy
from agentflow.retries import ResolvedPolicy

DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_MAX_CONCURRENT_RUNS = 25  # AutoGPT's runs per user per graph at once (README, "Concurrency limits")
MAX_CONCURRENT_RUNS = 1_000  # the holders of a graph's slots share one item: 1,000 ids stay well under 400 KB


def env_number(env: Mapping[str, str], name: str, minimum: float) -> float | None:
    """The number in variable `name` (None when unset or empty); ConfigurationError naming it when malformed."""
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    value = env_number(env, name, minimum)
    return default if value is None else value


def _whole(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole number in [minimum, maximum] from variable `name`; ConfigurationError naming it otherwise."""
    value = env_number(env, name, minimum)
    if value is None:
        return default
    if not minimum <= value <= maximum or not value.is_integer():
        raise ConfigurationError(f"{name} must be a whole number from {minimum} to {maximum}, got {env[name]!r}")
    return int(value)


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """An on/off variable: true/false, on/off, 1/0 or yes/no; ConfigurationError naming it otherwise."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "on", "1", "yes"):
        return True
    if raw in ("false", "off", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {env[name]!r}")


@dataclass(frozen=True)
class Settings:
    table_name: str
    event_bus_name: str
    max_attempts: int = 3  # attempts of one node execution: retries of transient errors and crashed workers
    retry_initial_delay_seconds: float = 2.0  # backoff before attempt 2; doubles per attempt, with full jitter
    retry_max_delay_seconds: float = 60.0  # the longest backoff (a Retry-After is honoured up to it)
    retry_queue_url: str = ""  # the SQS queue delayed attempts go through (template.yaml: RetryQueue)
    node_timeout_seconds: float = 60.0  # a block's default time limit per attempt (blocks and nodes may set theirs)
    default_lease_seconds: float = 300.0  # the node executor's timeout in template.yaml
    inline_chains: bool = True  # a worker runs a node's single ready child itself (docs/architecture.md, "Chains")
    max_value_bytes: int = 300_000  # a node's inputs or outputs must fit one DynamoDB item (400 KB)
    retention_days: float = DEFAULT_RETENTION_DAYS  # finished runs expire (DynamoDB TTL) this long after they end
    scheduler_mode: str = "eventbridge"  # "local": the local stack fires stored schedules itself
    schedule_group_name: str = ""
    scheduled_run_function_arn: str = ""
    scheduler_role_arn: str = ""
    service_name: str = "agentflow"  # in logs and metrics
    log_level: str = "INFO"
    http: HttpPolicy = field(default_factory=HttpPolicy)  # what the HTTP blocks may reach (AGENTFLOW_HTTP_*)
    credentials_key_id: str = ""  # the KMS key encrypting users' credentials (deployed; template.yaml sets it)
    credentials_key_file: str = ""  # a local key file instead (the local stack sets it); wins when both are set
    llm: LlmSettings = field(default_factory=LlmSettings)  # AGENTFLOW_LLM_*, OPENAI_BASE_URL, ANTHROPIC_BASE_URL
    # runs of one graph of one user going at once, unless the graph's max_concurrent_runs says otherwise
    max_concurrent_runs_per_graph: int = DEFAULT_MAX_CONCURRENT_RUNS

    @property
    def retention_seconds(self) -> float:
        """0 keeps runs forever."""
        return self.retention_days * 86_400

    @property
    def retry_policy(self) -> ResolvedPolicy:
        """The retry policy of a node whose graph and metadata set none."""
        return ResolvedPolicy(self.max_attempts, self.retry_initial_delay_seconds, self.retry_max_delay_seconds)

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            table, bus = env["TABLE_NAME"], env["EVENT_BUS_NAME"]
        except KeyError as missing:
            raise ConfigurationError(f"environment variable {missing} is not set (see template.yaml)") from None
        return Settings(
            table_name=table,
            event_bus_name=bus,
            max_attempts=int(_number(env, "AGENTFLOW_MAX_ATTEMPTS", 3, 1)),
            retry_initial_delay_seconds=_number(env, "AGENTFLOW_RETRY_INITIAL_DELAY", 2.0, 0),
            retry_max_delay_seconds=min(_number(env, "AGENTFLOW_RETRY_MAX_DELAY", 60.0, 0), 900.0),
            retry_queue_url=env.get("RETRY_QUEUE_URL", ""),
            node_timeout_seconds=_number(env, "AGENTFLOW_NODE_TIMEOUT", 60.0, 0.001),
            inline_chains=_switch(env, "AGENTFLOW_INLINE_CHAINS", True),
            retention_days=_number(env, "AGENTFLOW_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 0),
            scheduler_mode=env.get("AGENTFLOW_SCHEDULER") or "eventbridge",
            schedule_group_name=env.get("SCHEDULE_GROUP_NAME", ""),
            scheduled_run_function_arn=env.get("SCHEDULED_RUN_FUNCTION_ARN", ""),
            scheduler_role_arn=env.get("SCHEDULER_ROLE_ARN", ""),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or "agentflow",
            log_level=(env.get("POWERTOOLS_LOG_LEVEL") or env.get("LOG_LEVEL") or "INFO").upper(),
            http=http_policy(env),
            credentials_key_id=env.get("AGENTFLOW_CREDENTIALS_KEY_ID", ""),
            credentials_key_file=env.get("AGENTFLOW_CREDENTIALS_KEY_FILE", ""),
            llm=LlmSettings.from_env(env),
            max_concurrent_runs_per_graph=_whole(
                env,
                "AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH",
                DEFAULT_MAX_CONCURRENT_RUNS,
                1,
                MAX_CONCURRENT_RUNS,
            ),
        )


def http_policy(env: Mapping[str, str]) -> HttpPolicy:
    """AGENTFLOW_HTTP_ALLOW_HOSTS (comma-separated names or addresses) and the request limits."""
    defaults = HttpPolicy()
    allow = frozenset(h.strip().lower() for h in (env.get("AGENTFLOW_HTTP_ALLOW_HOSTS") or "").split(",") if h.strip())
    return HttpPolicy(
        allow_hosts=allow,
        connect_timeout=_number(env, "AGENTFLOW_HTTP_CONNECT_TIMEOUT", defaults.connect_timeout, 0.001),
        read_timeout=_number(env, "AGENTFLOW_HTTP_READ_TIMEOUT", defaults.read_timeout, 0.001),
        max_response_bytes=int(_number(env, "AGENTFLOW_HTTP_MAX_RESPONSE_BYTES", defaults.max_response_bytes, 1)),
    )
