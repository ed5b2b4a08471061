"""The benchmark graphs of README "Performance and cost", in the AutoGPT export format (block names resolve to
UUIDs on validation).

Built here rather than imported from tests/, so test helpers can change without breaking the benchmark.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    graph: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    # What the run must output (values sorted, since a fan-out records them in completion order).
    expected_outputs: dict[str, list[Any]] = field(default_factory=dict)


def _node(node_id: str, block: str, **input_default: Any) -> dict[str, Any]:
    return {"id": node_id, "block_id": block, "input_default": input_default, "metadata": {}}


def _link(source: str, source_name: str, sink: str, sink_name: str) -> dict[str, Any]:
    return {
        "source_id": source,
        "sink_id": sink,
        "source_name": source_name,
        "sink_name": sink_name,
        "is_static": False,
    }


def chain(length: int) -> Scenario:
    """`length` CalculatorBlocks adding 1 in a row, then an AgentOutputBlock: one node runs at a time."""
    calcs = [f"add{i:03d}" for i in range(length)]
    nodes = [_node(calcs[0], "CalculatorBlock", operation="Add", a=0, b=1)]
    nodes += [_node(c, "CalculatorBlock", operation="Add", b=1) for c in calcs[1:]]
    nodes.append(_node("out", "AgentOutputBlock", name="result"))
    links = [_link(a, "result", b, "a") for a, b in itertools.pairwise(calcs)]
    links.append(_link(calcs[-1], "result", "out", "value"))
    return Scenario(
        name=f"chain-{length}",
        description=f"{length} x CalculatorBlock Add 1 in a row -> AgentOutputBlock",
        graph={"name": f"bench chain {length}", "nodes": nodes, "links": links},
        expected_outputs={"result": [float(length)]},
    )


def fan_out(width: int) -> Scenario:
    """StepThroughItemsBlock over range(width): `width` CalculatorBlock and `width` AgentOutputBlock executions."""
    graph = {
        "name": f"bench fan-out {width}",
        "nodes": [
            _node("in", "AgentInputBlock", name="items"),
            _node("step", "StepThroughItemsBlock"),
            _node("calc", "CalculatorBlock", operation="Add", b=1),
            _node("out", "AgentOutputBlock", name="results"),
        ],
        "links": [
            _link("in", "result", "step", "items"),
            _link("step", "item", "calc", "a"),
            _link("calc", "result", "out", "value"),
        ],
        # Every item runs two nodes; the default limit (1,000) would stop a wide fan-out.
        "node_execution_limit": max(1_000, 5 * width),
    }
    return Scenario(
        name=f"fan-out-{width}",
        description=f"AgentInput -> StepThroughItems over range({width}) -> {width} x (Calculator -> AgentOutput)",
        graph=graph,
        inputs={"items": list(range(width))},
        expected_outputs={"results": [float(i + 1) for i in range(width)]},
    )


def diamond() -> Scenario:
    """in -> (left, right) -> join -> out: a join waits for both branches."""
    graph = {
        "name": "bench diamond",
        "nodes": [
            _node("in", "AgentInputBlock", name="x"),
            _node("left", "CalculatorBlock", operation="Add", b=1),
            _node("right", "CalculatorBlock", operation="Multiply", b=10),
            _node("join", "FillTextTemplateBlock", format="{{ l }}|{{ r }}", values={}),
            _node("out", "AgentOutputBlock", name="joined"),
        ],
        "links": [
            _link("in", "result", "left", "a"),
            _link("in", "result", "right", "a"),
            _link("left", "result", "join", "values_#_l"),
            _link("right", "result", "join", "values_#_r"),
            _link("join", "output", "out", "value"),
        ],
    }
    return Scenario(
        name="diamond",
        description="AgentInput -> (Calculator, Calculator) -> FillTextTemplate join -> AgentOutput",
        graph=graph,
        inputs={"x": 1},
        expected_outputs={"joined": ["2.0|10.0"]},
    )


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [chain(20), fan_out(50), diamond()]
    return [chain(200), fan_out(1_000), diamond(), fan_out(10_000)]
