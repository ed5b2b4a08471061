"""A small builder for test graphs in the AutoGPT export format (block names resolve to UUIDs on validation)."""

from __future__ import annotations

from typing import Any


class GraphBuilder:
    def __init__(self, name: str = "test graph", node_execution_limit: int | None = None) -> None:
        self.name = name
        self.nodes: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.limit = node_execution_limit

    def node(self, node_id: str, block: str, **input_default: Any) -> GraphBuilder:
        self.nodes.append({"id": node_id, "block_id": block, "input_default": input_default, "metadata": {}})
        return self

    def input(self, node_id: str, name: str, value: Any = None) -> GraphBuilder:
        defaults: dict[str, Any] = {"name": name}
        if value is not None:
            defaults["value"] = value
        return self.node(node_id, "AgentInputBlock", **defaults)

    def output(self, node_id: str, name: str) -> GraphBuilder:
        return self.node(node_id, "AgentOutputBlock", name=name)

    def link(self, source: str, source_name: str, sink: str, sink_name: str, static: bool = False) -> GraphBuilder:
        self.links.append(
            {
                "source_id": source,
                "sink_id": sink,
                "source_name": source_name,
                "sink_name": sink_name,
                "is_static": static,
            }
        )
        return self

    def build(self) -> dict[str, Any]:
        graph: dict[str, Any] = {"name": self.name, "nodes": self.nodes, "links": self.links}
        if self.limit is not None:
            graph["node_execution_limit"] = self.limit
        return graph


def linear() -> dict[str, Any]:
    return (
        GraphBuilder("linear")
        .input("in", "x")
        .node("add", "CalculatorBlock", operation="Add", b=34)
        .node("mul", "CalculatorBlock", operation="Multiply", b=2)
        .output("out", "result")
        .link("in", "result", "add", "a")
        .link("add", "result", "mul", "a")
        .link("mul", "result", "out", "value")
        .build()
    )


def diamond() -> dict[str, Any]:
    return (
        GraphBuilder("diamond")
        .input("in", "x")
        .node("left", "CalculatorBlock", operation="Add", b=1)
        .node("right", "CalculatorBlock", operation="Multiply", b=10)
        .node("join", "FillTextTemplateBlock", format="{{ l }}|{{ r }}", values={})
        .output("out", "joined")
        .link("in", "result", "left", "a")
        .link("in", "result", "right", "a")
        .link("left", "result", "join", "values_#_l")
        .link("right", "result", "join", "values_#_r")
        .link("join", "output", "out", "value")
        .build()
    )


def fan_out() -> dict[str, Any]:
    return (
        GraphBuilder("fan-out")
        .input("in", "items")
        .node("step", "StepThroughItemsBlock")
        .node("square", "CalculatorBlock", operation="Power", b=2)
        .output("out", "squares")
        .link("in", "result", "step", "items")
        .link("step", "item", "square", "a")
        .link("square", "result", "out", "value")
        .build()
    )


def branch() -> dict[str, Any]:
    return (
        GraphBuilder("branch")
        .input("in", "n")
        .node("cond", "ConditionBlock", operator=">", value2=5, yes_value="big", no_value="small")
        .output("yes", "yes")
        .output("no", "no")
        .link("in", "result", "cond", "value1")
        .link("cond", "yes_output", "yes", "value")
        .link("cond", "no_output", "no", "value")
        .build()
    )


def static_feed() -> dict[str, Any]:
    """A static value (the factor) feeds every execution of `mul`, however many items arrive."""
    return (
        GraphBuilder("static feed")
        .input("items", "items")
        .input("factor", "factor")
        .node("step", "StepThroughItemsBlock")
        .node("mul", "CalculatorBlock", operation="Multiply")
        .output("out", "products")
        .link("items", "result", "step", "items")
        .link("step", "item", "mul", "a")
        .link("factor", "result", "mul", "b")
        .link("mul", "result", "out", "value")
        .build()
    )


def endless_loop(limit: int = 25) -> dict[str, Any]:
    """`inc` feeds itself forever; only the node-execution limit ends it."""
    return (
        GraphBuilder("loop", node_execution_limit=limit)
        .input("start", "start", 0)
        .node("inc", "CalculatorBlock", operation="Add", b=1)
        .link("start", "result", "inc", "a")
        .link("inc", "result", "inc", "a")
        .build()
    )


def failing(handle_error: bool) -> dict[str, Any]:
    builder = (
        GraphBuilder("failing" + (" handled" if handle_error else ""))
        .input("in", "x")
        .node("div", "CalculatorBlock", operation="Divide", b=0)
        .output("out", "result")
        .link("in", "result", "div", "a")
        .link("div", "result", "out", "value")
    )
    if handle_error:
        builder.output("err", "error").link("div", "error", "err", "value")
    return builder.build()


AGENT_EXECUTOR = "e189baac-8c20-45a1-94a7-55177ea42565"


def doubler(graph_id: str, version: int, calls: dict[str, Any] | None = None) -> dict[str, Any]:
    """A small sub-graph (input `n`, output `twice`), as an export's `sub_graphs` entry."""
    builder = (
        GraphBuilder(f"doubler {graph_id}")
        .input("in", "n")
        .node("mul", "CalculatorBlock", operation="Multiply", b=2)
        .output("out", "twice")
        .link("in", "result", "mul", "a")
        .link("mul", "result", "out", "value")
    )
    if calls is not None:
        builder.nodes.append(calls)
    return {
        **builder.build(),
        "id": graph_id,
        "version": version,
        "input_schema": {"properties": {"n": {}}},
        "output_schema": {"properties": {"twice": {}}},
    }


def agent_node(node_id: str, graph_id: str, version: int) -> dict[str, Any]:
    return {
        "id": node_id,
        "block_id": AGENT_EXECUTOR,
        "input_default": {
            "user_id": "someone-else",
            "graph_id": graph_id,
            "graph_version": version,
            "inputs": {},
            "input_schema": {"properties": {"n": {}}},
            "output_schema": {"properties": {"twice": {}}},
        },
        "metadata": {},
    }


def sub_graph_export(node_graph_id: str, version: int, subs: list[dict[str, Any]]) -> dict[str, Any]:
    graph = GraphBuilder("caller").input("in", "x").output("out", "result").build()
    graph["nodes"].append(agent_node("call", node_graph_id, version))
    graph["links"] += [
        {"source_id": "in", "sink_id": "call", "source_name": "result", "sink_name": "n"},
        {"source_id": "call", "sink_id": "out", "source_name": "twice", "sink_name": "value"},
    ]
    return {**graph, "sub_graphs": subs}


# -- sub-agents (AgentExecutorBlock): a child graph with input `x` and output `y`, and graphs calling it


def adder(amount: float = 1) -> dict[str, Any]:
    """x -> x + amount -> y"""
    return (
        GraphBuilder("adder")
        .input("x", "x")
        .node("add", "CalculatorBlock", operation="Add", b=amount)
        .output("y", "y")
        .link("x", "result", "add", "a")
        .link("add", "result", "y", "value")
        .build()
    )


def divide_by_zero() -> dict[str, Any]:
    """x -> x / 0: the node fails, and so does the run"""
    return (
        GraphBuilder("divide by zero")
        .input("x", "x")
        .node("div", "CalculatorBlock", operation="Divide", b=0)
        .output("y", "y")
        .link("x", "result", "div", "a")
        .link("div", "result", "y", "value")
        .build()
    )


def call_child(builder: GraphBuilder, node_id: str, child: tuple[str, int], **defaults: Any) -> GraphBuilder:
    """Add an AgentExecutorBlock node calling `child` (graph id, version): its pins are `x` in, `y` out."""
    graph_id, version = child
    return builder.node(
        node_id,
        "AgentExecutorBlock",
        **{
            "user_id": "set-on-import",
            "graph_id": graph_id,
            "graph_version": version,
            "agent_name": "child",
            "inputs": {},
            "input_schema": {"properties": {"x": {"type": "number"}}, "required": ["x"]},
            "output_schema": {"properties": {"y": {"type": "number"}}},
            **defaults,
        },
    )


def wrapper(child: tuple[str, int]) -> dict[str, Any]:
    """x -> the child -> y"""
    builder = GraphBuilder("wrapper").input("x", "x").output("out", "y")
    call_child(builder, "call", child)
    return builder.link("x", "result", "call", "x").link("call", "y", "out", "value").build()


def twice(child: tuple[str, int], handled: bool = False) -> dict[str, Any]:
    """x -> two sub-agent nodes calling `child` (with x and x*10), their y's -> out (and their errors -> error)"""
    builder = GraphBuilder("parent").input("x", "x").node("ten", "CalculatorBlock", operation="Multiply", b=10)
    call_child(builder, "first", child)
    call_child(builder, "second", child)
    builder.output("out", "out").link("x", "result", "ten", "a").link("x", "result", "first", "x")
    builder.link("ten", "result", "second", "x").link("first", "y", "out", "value").link("second", "y", "out", "value")
    if handled:
        builder.output("err", "error").link("first", "error", "err", "value").link("second", "error", "err", "value")
    return builder.build()


def reviewed(editable: bool = True, side_branch: bool = False, **review: Any) -> dict[str, Any]:
    """Input `x` -> a HumanInTheLoopBlock node `review` (name "check x") -> outputs `approved`, `rejected` and
    `message`. With `side_branch`, `x` also goes through a calculator to output `side`, beside the review."""
    builder = (
        GraphBuilder("reviewed")
        .input("in", "x")
        .node("review", "HumanInTheLoopBlock", name="check x", editable=editable, **review)
        .output("approved", "approved")
        .output("rejected", "rejected")
        .output("message", "message")
        .link("in", "result", "review", "data")
        .link("review", "approved_data", "approved", "value")
        .link("review", "rejected_data", "rejected", "value")
        .link("review", "review_message", "message", "value")
    )
    if side_branch:
        builder.node("side_add", "CalculatorBlock", operation="Add", b=1).output("side", "side")
        builder.link("in", "result", "side_add", "a").link("side_add", "result", "side", "value")
    return builder.build()
