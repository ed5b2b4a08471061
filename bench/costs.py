"""Modelled AWS cost per million node executions at on-demand list prices (us-east-1), beside Step Functions."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.scenarios import ScenarioResult

MILLION = 1_000_000
DYNAMODB_WRITE_PER_MILLION = 0.625  # $ per million write request units
DYNAMODB_READ_PER_MILLION = 0.125  # $ per million read request units
EVENTBRIDGE_PER_MILLION = 1.00  # $ per million custom events (64 KB chunks)
LAMBDA_REQUEST_PER_MILLION = 0.20  # $ per million requests
LAMBDA_GB_SECOND = 0.0000133334  # $ per GB-second, arm64
LAMBDA_MEMORY_GB = 512 / 1024  # NodeExecutorFunction's MemorySize in template.yaml
STEP_FUNCTIONS_PER_MILLION = 25.00  # $ per million state transitions, Standard workflows
TRANSITIONS_PER_NODE = 1


@dataclass(frozen=True)
class Cost:
    scenario: str
    dynamodb_writes: float
    dynamodb_reads: float
    eventbridge: float
    lambda_requests: float
    lambda_duration: float
    assumed_duration_ms: int  # billed duration of one invocation (Lambda bills per started ms)
    total: float
    total_with_local_write_units: float  # the same, pricing DynamoDB Local's own write-unit figure
    step_functions: float
    step_functions_ratio: float  # total / step_functions


def lambda_duration_cost(invocations_per_node: float, duration_ms: float) -> float:
    """$ per million node executions for `duration_ms` of billed time per invocation."""
    return invocations_per_node * MILLION * LAMBDA_MEMORY_GB * (duration_ms / 1000) * LAMBDA_GB_SECOND


def cost_of(result: ScenarioResult) -> Cost:
    per_node = result.per_node
    # Billed duration: the measured mean engine time of a node execution, rounded up to Lambda's 1 ms granularity.
    duration_ms = max(1, math.ceil(result.timing.engine_ms))
    writes = per_node["dynamodb_write_units_modelled"] * DYNAMODB_WRITE_PER_MILLION
    reads = per_node["dynamodb_read_units"] * DYNAMODB_READ_PER_MILLION
    events = per_node["eventbridge_chunks"] * EVENTBRIDGE_PER_MILLION
    requests = per_node["lambda_invocations"] * LAMBDA_REQUEST_PER_MILLION
    duration = lambda_duration_cost(per_node["lambda_invocations"], duration_ms)
    total = writes + reads + events + requests + duration
    local_writes = per_node["dynamodb_write_units"] * DYNAMODB_WRITE_PER_MILLION
    step_functions = TRANSITIONS_PER_NODE * STEP_FUNCTIONS_PER_MILLION
    return Cost(
        scenario=result.name,
        dynamodb_writes=writes,
        dynamodb_reads=reads,
        eventbridge=events,
        lambda_requests=requests,
        lambda_duration=duration,
        assumed_duration_ms=duration_ms,
        total=total,
        total_with_local_write_units=total - writes + local_writes,
        step_functions=step_functions,
        step_functions_ratio=total / step_functions,
    )
