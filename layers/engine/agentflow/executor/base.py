"""What every part of the engine shares: the store, the publisher, the settings, the cache of graph versions,
and one unit of work (a store metered for it, whose costs are added to the run's STATS once, at its end)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agentflow.clock import epoch_of
from agentflow.config import Settings
from agentflow.credentials.port import CredentialsPort
from agentflow.errors import NotFound
from agentflow.events import EventPublisher, OutboundEvent
from agentflow.exports import plan_import
from agentflow.graph import ValidGraph, validate_graph
from agentflow.retries import RetryQueue
from agentflow.store import ExecutionRecord, Meter, RunStatePort, Store, Transition


class NodeRunOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"  # the attempt failed transiently: the next one is queued with a delay
    DEFERRED = "deferred"  # the block asked to wait (a countdown): it runs again after the delay
    NOT_DUE = "not_due"  # a retry's backoff has not passed yet: its delayed message runs it
    TERMINATED = "terminated"  # the execution was stopped or had ended; the node will resume or never run
    DUPLICATE = "duplicate"  # another delivery holds or finished this node execution
    LOST_LEASE = "lost_lease"  # the lease expired and another worker took over
    MISSING = "missing"  # no such execution or node execution
    WAITING = "waiting"  # a sub-agent node started (or resumed) its child run; the child's end wakes it


class GraphNotFound(NotFound):
    pass


@dataclass
class SweepReport:
    executions: int = 0  # unfinished executions looked at
    republished: int = 0  # node events published again (lost QUEUED events, expired leases, lost retries)
    timed_out: int = 0  # runs failed because they went past their graph's timeout_seconds
    started: int = 0  # starts that died between writing the execution and publishing its nodes
    finalized: int = 0  # runs whose pending count reached 0 without anyone finalizing them
    repaired: int = 0  # pending counts that disagreed with the node items
    retired: int = 0  # finished runs whose items were given their expiry (retention) by the sweep
    woken: int = 0  # sub-agent nodes whose child ended without waking them
    reviews_timed_out: int = 0  # pending reviews past their timeout, resolved as their block says
    admitted: int = 0  # runs waiting for a slot that the sweep started (a slot freed and nobody started them)
    slots_released: int = 0  # slots still held by runs that had stopped or ended (their worker died)


@dataclass(frozen=True)
class StartResult:
    execution_id: str
    created: bool  # False when an idempotency key found an earlier execution


@dataclass
class UnitOfWork:
    """One handler's work on one run: a store metered for it, and the run it works on (known after a start)."""

    store: RunStatePort
    execution_id: str | None = None


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def age_seconds(timestamp: str | None, now: float) -> float:
    if not timestamp:
        return float("inf")
    return now - epoch_of(timestamp)


class EngineBase:
    def __init__(
        self,
        store: Store,
        publisher: EventPublisher,
        settings: Settings,
        *,
        credentials: CredentialsPort | None = None,
        retry_queue: RetryQueue | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.credentials = credentials  # None: graphs whose blocks take credentials cannot start
        self.retry_queue = retry_queue  # None: a transient failure fails its node (no delayed attempts)
        self.rng = rng or random.Random()  # the backoff's jitter; tests seed it
        self._graphs: dict[tuple[str, str, int], ValidGraph] = {}  # versions are immutable: cache freely

    @contextmanager
    def _unit(self, execution_id: str | None = None) -> Iterator[UnitOfWork]:
        """A unit of work; its costs go to the run's STATS item in one write at the end, whatever happens."""
        unit = UnitOfWork(self.store.with_meter(Meter()), execution_id)
        try:
            yield unit
        finally:
            if unit.execution_id is not None:
                unit.store.flush_meter(unit.execution_id)

    # -- graphs

    def register_graph(self, user_id: str, graph: ValidGraph, graph_id: str | None = None) -> tuple[str, int]:
        """Store `graph` as a new version of `graph_id` (a new graph when None); returns (graph id, version)."""
        graph_id = graph_id or str(uuid.uuid4())
        version = self.store.put_graph_version(user_id, graph_id, graph.graph.name, graph.graph.to_json())
        self._graphs[(user_id, graph_id, version)] = graph
        return graph_id, version

    def import_export(self, user_id: str, document: Any) -> tuple[str, int]:
        """Store an AutoGPT export: each of its sub-graphs as a new graph of the user, then the export's own graph,
        its AgentExecutorBlock nodes pointed at the stored copies (README, "Sub-graphs"). Nothing is stored when
        any graph is invalid or a node calls a graph that is neither in the export nor the user's."""

        def exists(graph_id: str, version: int) -> bool:
            return self.store.get_graph_version(user_id, graph_id, version) is not None

        plan = plan_import(document, user_id, exists)
        for graph_id, sub_graph in plan.sub_graphs:
            self.register_graph(user_id, sub_graph, graph_id)
        return self.register_graph(user_id, plan.main)

    def load_graph(self, user_id: str, graph_id: str, version: int, store: RunStatePort | None = None) -> ValidGraph:
        key = (user_id, graph_id, version)
        if key not in self._graphs:
            raw = (store or self.store).get_graph_version(user_id, graph_id, version)
            if raw is None:
                raise GraphNotFound(f"graph {graph_id} version {version} not found")
            self._graphs[key] = validate_graph(raw)
        return self._graphs[key]

    # -- events

    def _publish(self, store: RunStatePort, events: Sequence[OutboundEvent]) -> None:
        if events:
            self.publisher.publish(events)
            store.meter.events_published += len(events)

    @staticmethod
    def _status_event(transition: Transition[ExecutionRecord]) -> OutboundEvent:
        run = transition.item
        assert run is not None  # a won transition returns its item
        return OutboundEvent.status_changed(run.execution_id, run.status.value, run.user_id, run.graph_id)

    @property
    def _retains(self) -> bool:
        """Whether finished runs expire (AGENTFLOW_RETENTION_DAYS > 0): they then stay on the sweeper's index
        until their items carry `expires_at`."""
        return self.settings.retention_seconds > 0
