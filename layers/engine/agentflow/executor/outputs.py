"""Output nodes run by their sender (docs/architecture.md, "Output nodes run by their sender"): a graph output
with nothing after it, whose one value comes by a direct delivery, is run by the worker of the node that sends it,
so that the sender's finish records it ended, carried on the sender's own item, instead of queueing it to be
claimed, run and finished on its own. Its block is pure and reads nothing but its inputs, so running it early is
running it."""

from __future__ import annotations

from typing import Any

from agentflow.blocks.sdk import BlockType
from agentflow.clock import Clock
from agentflow.executor import attempts
from agentflow.executor.base import dumps
from agentflow.graph import ValidGraph

# Inputs and outputs of an output node run by its sender, together: both go on the sender's item (the value twice
# more), which its finish writes in a transaction whose items should stay small
RAN_OUTPUT_BYTES = 64_000


def run_output_now(
    graph: ValidGraph, execution_id: str, node_id: str, seq: int, inputs: dict[str, Any], clock: Clock
) -> str | None:
    """The outputs (JSON) of an output node run now, or None when it is to run on its own: not an output block,
    linked onwards, failed or too big."""
    block = graph.block(node_id)
    if block.block_type is not BlockType.OUTPUT or not block.pure or graph.links_from[node_id]:
        return None
    run = attempts.run_at_once(graph, execution_id, node_id, seq, inputs, clock)
    if run is None:
        return None  # its own run says what went wrong, as without this
    outputs_json = dumps(run.outputs)
    if len(outputs_json.encode()) + len(dumps(inputs).encode()) > RAN_OUTPUT_BYTES:
        return None
    return outputs_json
