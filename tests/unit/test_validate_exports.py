"""`agentflow validate` and `agentflow.exports.check_export`: every problem of every file and of every sub-graph
at once, each naming its file, sub-graph, node and pin, without a local stack (README, "Validating exports")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentflow.exports import check_export
from agentflow_local.cli import main
from tests import graphs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def broken() -> dict[str, Any]:
    graph = graphs.linear()
    graph["nodes"][1]["block_id"] = "NoSuchBlock"
    del graph["nodes"][2]["input_default"]["b"]
    return graph


def with_sub_graphs(*subs: dict[str, Any]) -> dict[str, Any]:
    return {**graphs.linear(), "sub_graphs": [{**sub, "name": f"sub {i}"} for i, sub in enumerate(subs)]}


def write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_the_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, EXAMPLES)]) == 0
    out = capsys.readouterr()
    assert out.err == "" and out.out.count(": valid") == len(EXAMPLES)


def test_every_problem_of_every_graph_is_listed() -> None:
    problems = check_export(with_sub_graphs(graphs.linear(), broken()))
    assert [(p.graph, p.problem.node_id, p.problem.pin) for p in problems] == [
        ("sub 1", "add", "block_id"),
        ("sub 1", "mul", "b"),
    ]
    assert check_export(with_sub_graphs(graphs.linear())) == []
    assert [p.problem.message for p in check_export({**graphs.linear(), "sub_graphs": {}})] == [
        "sub_graphs must be a list of graphs"
    ]


def test_problems_go_to_stderr_naming_file_node_and_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", graphs.linear())
    bad = write(tmp_path, "bad.json", with_sub_graphs(broken()))
    not_json = write(tmp_path, "text.json", "{nope")
    missing = tmp_path / "missing.json"
    assert main(["validate", str(good), str(bad), str(not_json), str(missing)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{bad}: sub-graph 'sub 0': node 'add', pin 'block_id': unknown block 'NoSuchBlock'" in err
    assert f"{bad}: sub-graph 'sub 0': node 'mul', pin 'b': required input has no default, link or graph input" in err
    assert any(line.startswith(f"{not_json}: not valid JSON") for line in err)
    assert any(line.startswith(f"{missing}: cannot read the file") for line in err)
    assert not any(line.startswith(str(good)) for line in err)


def test_json_prints_one_document_with_the_problems_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "good.json", graphs.linear())
    bad = write(tmp_path, "bad.json", broken())
    assert main(["validate", "--json", str(good), str(bad)]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert [(f["file"], f["valid"]) for f in document["files"]] == [(str(good), True), (str(bad), False)]
    assert document["files"][1]["problems"][0] == {
        "graph": None,
        "node_id": "add",
        "pin": "block_id",
        "message": "unknown block 'NoSuchBlock'",
    }
