"""Run one scenario on an in-process local stack and boil the recording down to counts, ratios and times."""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow.store import Store
from agentflow_local.bus import Delivery
from agentflow_local.stack import LocalStack, LocalStackConfig
from bench import dynamo
from bench.graphs import Scenario
from bench.probes import Probe, Recording, Request

USER = "bench"
FINAL = {ExecutionStatus.COMPLETED.value, ExecutionStatus.FAILED.value, ExecutionStatus.TERMINATED.value}


@dataclass(frozen=True)
class CallRow:
    """One kind of request: the Store method that made it, the operation, the item families it touched."""

    call: str
    requests: int
    failed: int
    local_write_units: float
    modelled_write_units: float
    modelled_index_units: float  # ... of which for GSIs
    read_units: float
    mean_ms: float


@dataclass(frozen=True)
class Timing:
    node_runs: int  # Engine.run_node calls (one per Lambda invocation)
    engine_ms: float  # mean wall time of one run_node
    dynamodb_ms: float  # ... of which DynamoDB requests
    events_ms: float  # ... of which PutEvents
    other_ms: float  # ... the rest: the engine's own Python, the block, and waiting for the GIL
    engine_to_dynamodb: float  # engine_ms / dynamodb_ms, both measured in the run
    requests_per_run: float
    raw_dynamodb_ms: float  # the same request mix at the idle latency measured after the run
    engine_to_raw: float  # engine_ms / raw_dynamodb_ms
    starter_ms: float  # time of start_execution (outside any node)


@dataclass
class ScenarioResult:
    name: str
    description: str
    status: str
    error: str | None
    outputs_ok: bool
    node_executions: int
    wall_seconds: float
    throughput: float  # node executions per second, wall clock
    stats: dict[str, Any]  # the run's STATS, as execution_report returns them
    per_node: dict[str, float]  # counts per node execution
    lambda_invocations: int
    handler_retries: int
    dead_letters: int
    eventbridge_chunks: int
    put_events_calls: int
    probe_requests: int  # DynamoDB requests the probe saw: must equal stats["dynamodb_requests"]
    modelled_write_units: float
    local_write_units_probe: float
    transaction_items: int
    transactions: int
    failed_writes: int
    calls: list[CallRow]
    timing: Timing
    latency: dynamo.Latency
    largest_items: dict[str, dynamo.LargestItem]
    notes: list[str] = field(default_factory=list)


def _call_label(request: Request) -> str:
    kinds: list[str] = []
    for ref in request.items:
        kind = dynamo.kind_of(ref.sk)
        if kind not in kinds:
            kinds.append(kind)
    items = f" x{len(request.items)}" if request.operation == "BatchWriteItem" else ""
    return f"{request.caller} {request.operation} {'+'.join(kinds)}{items}".strip()


def _calls(requests: list[Request], sizes: dynamo.Sizes) -> list[CallRow]:
    grouped: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        if request.service == "dynamodb":
            grouped[_call_label(request)].append(request)
    rows = [
        CallRow(
            call=label,
            requests=len(group),
            failed=sum(1 for r in group if r.error),
            local_write_units=sum(dynamo.local_write_units(r) for r in group),
            modelled_write_units=sum(dynamo.modelled_write_units(r, sizes) for r in group),
            modelled_index_units=sum(dynamo.modelled_index_units(r) for r in group),
            read_units=sum(dynamo.read_units(r) for r in group),
            mean_ms=statistics.fmean(r.seconds for r in group) * 1000,
        )
        for label, group in grouped.items()
    ]
    return sorted(rows, key=lambda r: (-r.modelled_write_units, -r.read_units, -r.requests))


def _timing(recording: Recording, latency: dynamo.Latency) -> Timing:
    runs = recording.node_runs
    count = max(1, len(runs))
    engine = sum(r.seconds for r in runs) / count * 1000
    ddb = sum(r.dynamodb_seconds for r in runs) / count * 1000
    events = sum(r.events_seconds for r in runs) / count * 1000
    in_node = [r for r in recording.requests if r.in_node and r.service == "dynamodb"]
    raw = sum(latency.for_operation(r.operation) for r in in_node) / count
    starter = sum(r.seconds for r in recording.requests if not r.in_node) * 1000
    return Timing(
        node_runs=len(runs),
        engine_ms=engine,
        dynamodb_ms=ddb,
        events_ms=events,
        other_ms=max(0.0, engine - ddb - events),
        engine_to_dynamodb=engine / ddb if ddb else 0.0,
        requests_per_run=len(in_node) / count,
        raw_dynamodb_ms=raw,
        engine_to_raw=engine / raw if raw else 0.0,
        starter_ms=starter,
    )


def _outputs_match(outputs: dict[str, list[Any]], expected: dict[str, list[Any]]) -> bool:
    def canonical(values: list[Any]) -> list[str]:
        return sorted(json.dumps(v) for v in values)

    return {k: canonical(v) for k, v in outputs.items()} == {k: canonical(v) for k, v in expected.items()}


def run_scenario(
    scenario: Scenario,
    *,
    root: Path,
    endpoint: str,
    probe: Probe,
    concurrency: int,
    timeout: float,
    latency_samples: int,
) -> ScenarioResult:
    saved_env = dict(os.environ)  # the stack sets the functions' environment in this process
    table = f"bench-{scenario.name}-{uuid.uuid4().hex[:8]}"
    config = LocalStackConfig(
        root=root, dynamodb_endpoint=endpoint, table_name=table, concurrency=concurrency, log_level="WARNING"
    )
    notes: list[str] = []
    try:
        with LocalStack(config) as stack:
            bus = stack.bus
            assert bus is not None
            invocations: list[Delivery] = []

            def count(delivery: Delivery) -> None:  # once per handler attempt: one Lambda invocation each
                invocations.append(delivery)  # list.append is atomic: the bus calls this from its workers

            bus.on_delivery = count
            engine = stack.engine
            graph = validate_graph(scenario.graph)
            graph_id, version = engine.register_graph(USER, graph)  # not part of the run: not recorded
            viewer = Store(dynamo.quiet_client(endpoint), table)

            with probe.recording() as recording:
                started = time.perf_counter()
                execution_id = engine.start_execution(USER, graph_id, version, scenario.inputs).execution_id
                # Every handler publishes what it queues before it returns, so the bus is busy until the run ends.
                if not bus.wait_idle(timeout):
                    notes.append(f"still running after {timeout:.0f}s: stopped")
                    engine.stop(execution_id)
                    bus.wait_idle(60)
                wall = time.perf_counter() - started

            report = execution_report(viewer, execution_id, graph.output_names)
            assert report is not None
            if report["status"] not in FINAL:
                notes.append(f"the bus went idle with the run {report['status']}: an event was lost")
            sizes, largest = dynamo.scan_items(viewer.client, table)
            latency = dynamo.measure_latency(endpoint, table, latency_samples)
            dead_letters = len(bus.dead_letters)
            retries = bus.retried
            if dead_letters:
                notes.append(f"{dead_letters} event(s) dead-lettered after every attempt failed")
    finally:
        os.environ.clear()
        os.environ.update(saved_env)

    stats = report["stats"]
    nodes = max(1, int(stats["node_executions"]))
    requests = [r for r in recording.requests if r.service == "dynamodb"]
    put_events = [r for r in recording.requests if r.service == "eventbridge"]
    transactions = [r for r in requests if r.operation == "TransactWriteItems"]
    modelled = sum(dynamo.modelled_write_units(r, sizes) for r in requests)
    chunks = sum(r.chunks for r in put_events)
    lambda_invocations = len(invocations)
    if len(requests) != stats["dynamodb_requests"]:
        notes.append(f"the probe saw {len(requests)} DynamoDB requests, STATS counted {stats['dynamodb_requests']}")
    return ScenarioResult(
        name=scenario.name,
        description=scenario.description,
        status=str(report["status"]),
        error=report["error"],
        outputs_ok=_outputs_match(report["outputs"], scenario.expected_outputs),
        node_executions=int(stats["node_executions"]),
        wall_seconds=wall,
        throughput=int(stats["node_executions"]) / wall if wall else 0.0,
        stats=dict(stats),
        per_node={
            "dynamodb_requests": stats["dynamodb_requests"] / nodes,
            "dynamodb_write_units": stats["dynamodb_write_units"] / nodes,
            "dynamodb_write_units_modelled": modelled / nodes,
            "dynamodb_index_write_units_modelled": sum(dynamo.modelled_index_units(r) for r in requests) / nodes,
            "dynamodb_read_units": stats["dynamodb_read_units"] / nodes,
            "eventbridge_entries": stats["events_published"] / nodes,
            "eventbridge_chunks": chunks / nodes,
            "lambda_invocations": lambda_invocations / nodes,
        },
        lambda_invocations=lambda_invocations,
        handler_retries=retries,
        dead_letters=dead_letters,
        eventbridge_chunks=chunks,
        put_events_calls=len(put_events),
        probe_requests=len(requests),
        modelled_write_units=modelled,
        local_write_units_probe=sum(dynamo.local_write_units(r) for r in requests),
        transaction_items=sum(len(r.items) for r in transactions),
        transactions=len(transactions),
        failed_writes=sum(1 for r in requests if r.error and r.operation in dynamo.WRITE_OPERATIONS),
        calls=_calls(requests, sizes),
        timing=_timing(recording, latency),
        latency=latency,
        largest_items=largest,
        notes=notes,
    )
