"""Request and response models of the HTTP API: the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from agentflow.graph import Graph


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable: unauthorized, not_found, invalid_request, conflict, ...")
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class BlockInfo(BaseModel):
    id: str
    name: str
    description: str
    categories: list[str]
    block_type: str
    static_output: bool
    cost: int
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class BlockList(BaseModel):
    blocks: list[BlockInfo]


class GraphIn(Graph):
    """A graph in the AutoGPT export format; `block_id` takes a block UUID or name. `sub_graphs` are the graphs
    its AgentExecutorBlock nodes call, stored with it."""

    sub_graphs: list[dict[str, Any]] | None = None


class ExportProblemOut(BaseModel):
    graph: str | None = None  # None: the export's own graph; else the sub-graph's name (or id)
    node_id: str | None = None
    pin: str | None = None
    message: str


class ValidationOut(BaseModel):
    valid: bool
    problems: list[ExportProblemOut]


class GraphSummary(BaseModel):
    graph_id: str
    name: str
    active_version: int
    latest_version: int
    created_at: str | None = None
    updated_at: str | None = None


class GraphOut(GraphSummary):
    version: int = Field(description="the version shown (the active one unless ?version= asks otherwise)")
    graph: dict[str, Any]
    input_names: list[str]
    required_inputs: list[str]
    output_names: list[str]


class GraphList(BaseModel):
    graphs: list[GraphSummary]


class VersionInfo(BaseModel):
    version: int
    created_at: str | None = None
    active: bool


class VersionList(BaseModel):
    graph_id: str
    versions: list[VersionInfo]


class ActiveVersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


class ExecuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, description="graph version; the active one by default")


class ExecutionStarted(BaseModel):
    execution_id: str
    graph_id: str
    graph_version: int
    status: str
    created: bool = Field(description="false when an Idempotency-Key found an earlier execution")


class Stats(BaseModel):
    node_executions: int
    duration_s: float | None
    dynamodb_requests: int
    dynamodb_write_units: float
    dynamodb_read_units: float
    events_published: int
    lambda_invocations: int = Field(
        default=0, description="node executor invocations that worked on the run (a chain run inline is one)"
    )
    llm_calls: int = 0
    llm_input_tokens: int = 0
    llm_output_tokens: int = 0
    llm_cost_usd: float = Field(default=0.0, description="estimated from the price table (README, Costs)")


class NodeStats(BaseModel):
    """A node execution's LLM use: zeros and a null model for blocks that call no LLM."""

    llm_calls: int = 0
    llm_retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None


class AttemptOut(BaseModel):
    attempt: int
    error: str | None = None
    ended_at: str | None = None
    retry_in_seconds: float | None = None  # the backoff before the next attempt, when this one failed transiently


class NodeExecutionOut(BaseModel):
    node_id: str
    seq: int
    block_id: str | None
    block_name: str | None
    status: str
    attempts: int
    attempt_log: list[AttemptOut] = Field(default_factory=list)
    retry_at: str | None = None  # a retry waiting for its backoff runs from then
    inputs: Any
    outputs: dict[str, list[Any]]
    error: str | None
    stats: NodeStats = Field(default_factory=NodeStats)
    child_execution_id: str | None = Field(default=None, description="a sub-agent node: the run it started")
    review_id: str | None = Field(default=None, description="a review node: its review (GET /reviews/{id})")
    queued_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None


class StatusChange(BaseModel):
    status: str
    at: str | None = None


class ExecutionOut(BaseModel):
    execution_id: str
    graph_id: str
    graph_version: int
    status: str
    inputs: Any
    outputs: dict[str, list[Any]]
    error: str | None
    parent_execution_id: str | None = Field(default=None, description="a sub-agent run: the run that started it")
    parent_node_id: str | None = None
    depth: int = Field(default=0, description="sub-agent levels below its top run")
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    stats: Stats
    nodes: list[NodeExecutionOut]


class ExecutionSummary(BaseModel):
    execution_id: str
    graph_id: str
    graph_version: int
    status: str
    error: str | None = None
    created_at: str | None = None
    ended_at: str | None = None


class ExecutionList(BaseModel):
    executions: list[ExecutionSummary]
    next_cursor: str | None = Field(default=None, description="pass as ?cursor= for the next page; null at the end")


class StatusOut(BaseModel):
    execution_id: str
    status: str


class EventList(BaseModel):
    execution_id: str
    events: list[StatusChange]


class Deleted(BaseModel):
    graph_id: str
    deleted: bool


class WebhookCreated(BaseModel):
    webhook_id: str
    url: str = Field(description="where the sender POSTs (no API key: deliveries are signed)")
    secret: str = Field(description="the HMAC-SHA256 secret; shown only here and on rotate")
    provider: str
    node_id: str


class WebhookInfo(BaseModel):
    webhook_id: str
    url: str
    provider: str
    node_id: str
    created_at: str | None = None


class WebhookList(BaseModel):
    graph_id: str
    webhooks: list[WebhookInfo]


class WebhookDeleted(BaseModel):
    webhook_id: str
    deleted: bool


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    cron: str = Field(min_length=1, max_length=200, description="5-field crontab, e.g. '0 9 * * 1-5'")
    timezone: str = Field(default="UTC", max_length=64, description="IANA timezone, e.g. Europe/Paris")
    inputs: dict[str, Any] = Field(default_factory=dict)
    graph_version: int | None = Field(default=None, ge=1, le=1_000_000, description="default: the active version")


class ScheduleOut(BaseModel):
    schedule_id: str
    name: str
    cron: str
    timezone: str
    aws_expression: str | None
    graph_id: str
    graph_version: int | None
    inputs: dict[str, Any]
    enabled: bool
    disabled_reason: str | None = None
    created_at: str | None = None
    next_runs: list[str] = Field(description="the next fire times (ISO 8601, in the schedule's timezone)")


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]


class ScheduleDeleted(BaseModel):
    schedule_id: str
    deleted: bool


class CredentialIn(BaseModel):
    """A credential to create (AutoGPT's fields). Secret fields are SecretStr: never printed, never answered."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    provider: str = Field(max_length=64, description="lowercase letters, digits and '_', e.g. openai or http")
    type: str = Field(default="api_key", max_length=64, description="api_key, user_password or host_scoped")
    title: str | None = Field(default=None, max_length=200)
    api_key: SecretStr | None = Field(default=None, description="api_key credentials: the key")
    username: SecretStr | None = Field(default=None, description="user_password credentials")
    password: SecretStr | None = Field(default=None, description="user_password credentials")
    host: str | None = Field(
        default=None, max_length=253, description="host_scoped credentials: api.example.com or *.example.com"
    )
    headers: dict[str, SecretStr] | None = Field(
        default=None, description="host_scoped credentials: header name -> value, sent only to `host`"
    )
    base_url: str | None = Field(
        default=None,
        max_length=2048,
        description="api_key credentials, optional: the base URL of an OpenAI-compatible API to call with the key "
        "(e.g. http://127.0.0.1:11434/v1); an absolute http(s) URL without user info, query or fragment",
    )


class CredentialOut(BaseModel):
    """A credential's metadata: its secret is never shown again after it is created."""

    id: str
    provider: str
    type: str
    title: str | None = None
    host: str | None = Field(default=None, description="host_scoped credentials only")
    base_url: str | None = Field(default=None, description="api_key credentials only: the API base URL, when set")
    created_at: str | None = None


class CredentialList(BaseModel):
    credentials: list[CredentialOut]


class CredentialDeleted(BaseModel):
    id: str
    deleted: bool


class ReviewDecisionIn(BaseModel):
    """AutoGPT's decision fields: approve or reject, with the data edited (when the review is editable)."""

    model_config = ConfigDict(extra="forbid")
    approved: bool
    reviewed_data: Any = Field(default=None, description="the data as the reviewer edited it (omit: unchanged)")
    message: str | None = Field(default=None, max_length=2000, description="the reviewer's message (blank: none)")


class ReviewOut(BaseModel):
    id: str
    execution_id: str
    graph_id: str
    graph_version: int
    node_id: str
    payload: Any = Field(description="the data to review")
    instructions: str = Field(description="what to review: the block's name input")
    editable: bool
    status: str = Field(description="WAITING, APPROVED or REJECTED")
    created_at: str | None
    timeout_at: str | None = Field(description="when its timeout decides it (null: no timeout)")
    on_timeout: str = Field(description="approve or reject: how its timeout decides it")
    reviewed_data: Any = Field(default=None, description="the reviewer's edit (null: not edited)")
    review_message: str | None = None
    was_edited: bool = False
    timed_out: bool = False
    reviewed_at: str | None = None


class ReviewList(BaseModel):
    reviews: list[ReviewOut]
