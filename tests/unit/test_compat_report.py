"""The compatibility report script: exports that validate, and the blocks the others need, counted per export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agentflow_local.compat import main
from tests import graphs

ROOT = Path(__file__).resolve().parents[2]


def test_report_counts_valid_exports_and_missing_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(ROOT / "examples" / "calculator.json", tmp_path / "calculator.json")
    for name, block in [("review.json", "f0f0f0f0-0000-4000-8000-000000000001"), ("other.json", "feed-beef")]:
        graph = graphs.linear()
        graph["nodes"][1]["block_id"] = block
        graph["sub_graphs"] = [{**graphs.linear(), "name": "sub"}]
        graph["sub_graphs"][0]["nodes"][1]["block_id"] = "f0f0f0f0-0000-4000-8000-000000000001"
        (tmp_path / name).write_text(json.dumps(graph))
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "calculator.json: valid" in out
    assert "1 of 3 exports validate" in out
    assert "    2 export(s) need `f0f0f0f0-0000-4000-8000-000000000001`" in out
    assert "    1 export(s) need `feed-beef`" in out
    assert main([str(tmp_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [(d["export"], d["valid"]) for d in document] == [
        ("calculator.json", True),
        ("other.json", False),
        ("review.json", False),
    ]
    assert main([str(tmp_path / "nowhere")]) == 2
