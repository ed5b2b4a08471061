"""Graph validation: every problem at once, each naming the node and the pin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.graph import GraphValidationError, validate_graph, validate_inputs
from tests import graphs

ROOT = Path(__file__).resolve().parents[2]


def problems_of(graph: object) -> list[str]:
    with pytest.raises(GraphValidationError) as caught:
        validate_graph(graph)
    return [str(p) for p in caught.value.problems]


def test_block_names_resolve_to_uuids() -> None:
    valid = validate_graph(graphs.linear())
    assert valid.graph.nodes[1].block_id == "b1ab9b19-67a6-406d-abf5-2dba76d00c79"


def test_links_from_static_output_blocks_are_forced_static() -> None:
    graph = graphs.linear()
    graph["links"][0]["is_static"] = False
    valid = validate_graph(graph)
    assert valid.graph.links[0].is_static  # AgentInputBlock has static output
    assert not valid.graph.links[1].is_static


def test_every_problem_is_reported_at_once() -> None:
    graph = (
        graphs.GraphBuilder()
        .input("a", "x")
        .input("b", "x")
        .node("calc", "CalculatorBlock", operation="Add")
        .node("ghost", "NoSuchBlock")
        .node("calc2", "CalculatorBlock", operation="Add", a=1)
        .link("a", "result", "calc", "a")
        .link("a", "nope", "calc", "b")
        .link("a", "result", "missing", "value")
        .build()
    )
    found = problems_of(graph)
    assert "node 'ghost', pin 'block_id': unknown block 'NoSuchBlock'" in found
    assert any("node 'a', pin 'nope'" in p and "has no output 'nope'" in p for p in found)
    assert any("ends at a missing node" in p for p in found)
    assert "node 'calc2', pin 'b': required input has no default, link or graph input" in found
    assert any("node 'b', pin 'name': duplicate graph input name 'x'" in p for p in found)


def test_dynamic_pin_base_names_are_checked() -> None:
    graph = (
        graphs.GraphBuilder()
        .input("a", "x")
        .node("t", "FillTextTemplateBlock", format="{{k}}")
        .link("a", "result", "t", "values_#_k")
        .link("a", "result_#_deep", "t", "valuez_#_k")
        .build()
    )
    found = problems_of(graph)
    assert len(found) == 1 and "'valuez_#_k'" in found[0]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"nodes": [{"id": "a"}]}, "nodes.0.block_id"),
        ({"nodes": []}, "at least one node"),
        ({"nodes": [{"id": "a#b", "block_id": "NoteBlock", "input_default": {"text": "x"}}]}, "'#'"),
    ],
)
def test_malformed_documents(document: object, fragment: str) -> None:
    assert any(fragment in p for p in problems_of(document))


def test_node_and_size_limits() -> None:
    graph = graphs.GraphBuilder()
    for i in range(501):
        graph.node(f"n{i}", "NoteBlock", text="x")
    assert any("the limit is 500" in p for p in problems_of(graph.build()))


def test_inputs_validation_names_each_input() -> None:
    valid = validate_graph(graphs.static_feed())
    with pytest.raises(GraphValidationError) as caught:
        validate_inputs(valid, {"itemz": []})
    found = [str(p) for p in caught.value.problems]
    assert "input 'itemz': unknown graph input (the graph's inputs: factor, items)" in found
    assert "input 'items': missing required graph input" in found
    assert "input 'factor': missing required graph input" in found


def test_toggle_and_defaulted_inputs_are_optional() -> None:
    graph = (
        graphs.GraphBuilder()
        .node("t", "AgentToggleInputBlock", name="flag")
        .input("d", "with_default", "hello")
        .build()
    )
    validate_inputs(validate_graph(graph), {})


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.json")), ids=str)
def test_examples_are_valid(path: Path) -> None:
    validate_graph(json.loads(path.read_text()))
