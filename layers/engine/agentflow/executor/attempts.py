"""One attempt of a block: run it under its time limit, then scrub every secret it was handed from what it returns
(docs/architecture.md, "Retries and timeouts" and "Credentials")."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agentflow.blocks.execution import ERROR_PIN, BlockRun, execute_block
from agentflow.blocks.sdk import Block, BlockContext
from agentflow.retries import ResolvedPolicy

if TYPE_CHECKING:
    from agentflow.clock import Clock
    from agentflow.graph import ValidGraph

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary text; such secrets are refused at creation anyway


def run_with_timeout(block: type[Block], inputs: Mapping[str, Any], context: BlockContext, timeout: float) -> BlockRun:
    """The block's run, or a retryable failure when it takes longer than `timeout` seconds. Python cannot kill a
    thread: a block past its limit is abandoned, daemonic, and what it yields later is dropped (the HTTP blocks'
    own timeouts end theirs)."""
    result: list[BlockRun] = []
    worker = threading.Thread(
        target=lambda: result.append(execute_block(block, inputs, context)),
        name=f"block-{context.node_exec_id}",
        daemon=True,
    )
    worker.start()
    worker.join(timeout)
    if result:
        return result[0]
    message = f"{block.name()} did not finish within its time limit of {timeout:g} s (attempt {context.attempt})"
    return BlockRun([(ERROR_PIN, message)], message, retryable=True)


def run_at_once(
    graph: ValidGraph, execution_id: str, node_id: str, seq: int, inputs: Mapping[str, Any], clock: Clock
) -> BlockRun | None:
    """The run of a node whose block reads only its inputs and takes no time (an output node run by its sender's
    worker: executor/outputs.py; an input run at the start: executor/start_inputs.py), in this thread: no time limit
    to enforce, no secret handed to it. None when it fails or would wait: the node then runs on its own, and its
    own run reports that."""
    context = BlockContext(
        execution_id=execution_id, node_id=node_id, node_exec_id=f"{node_id}#{seq}", clock=clock, graph=graph
    )
    run = execute_block(graph.block(node_id), inputs, context)
    return None if run.error is not None or run.deferred_seconds is not None else run


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """`value` with every occurrence of a secret replaced, in strings and dict keys at any depth."""
    words = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    if not words:
        return value
    return _scrub(value, words)


def _scrub(value: Any, words: list[str]) -> Any:
    if isinstance(value, str):
        for word in words:
            if word in value:
                value = value.replace(word, REDACTED)
        return value
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, words) for v in value)
    if isinstance(value, dict):
        return {_scrub(k, words): _scrub(v, words) for k, v in value.items()}
    return value


def scrub_run(run: BlockRun, secrets: Iterable[str]) -> BlockRun:
    """A block run with no secret left in its outputs or its error."""
    words = list(secrets)
    if not words:
        return run
    return dataclasses.replace(
        run,
        outputs=[(pin, scrub(value, words)) for pin, value in run.outputs],
        error=None if run.error is None else scrub(run.error, words),
    )


def final_result(run: BlockRun, attempt: int, policy: ResolvedPolicy) -> tuple[list[Any], str | None]:
    """What the node ends with; a transient failure with no attempt left says so."""
    if run.deferred_seconds is not None:  # nothing can run it later here
        error = "this block waits, and this deployment has no delayed-run queue (RETRY_QUEUE_URL)"
        return [(ERROR_PIN, error)], error
    if not run.retryable or run.error is None:
        return list(run.outputs), run.error
    error = f"{run.error} (attempt {attempt} of {policy.max_attempts}: no attempt left)"
    return [(ERROR_PIN, error)], error
