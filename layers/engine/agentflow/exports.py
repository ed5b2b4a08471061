"""AutoGPT exports as a whole: a graph and the `sub_graphs` its AgentExecutorBlock nodes call. `check_export`
validates every graph of an export without storing or running anything, for `agentflow validate` and
`POST /graphs/validate` (README, "Validating exports")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentflow.graph import GraphValidationError, Problem, validate_graph

__all__ = ["ExportProblem", "check_export", "load_export"]


@dataclass(frozen=True)
class ExportProblem:
    """A problem of one graph of an export: `graph` is None for the export's own graph, else the sub-graph's
    name (or id)."""

    problem: Problem
    graph: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"graph": self.graph, **self.problem.to_dict()}

    def __str__(self) -> str:
        where = f"sub-graph {self.graph!r}: " if self.graph is not None else ""
        return where + str(self.problem)


def load_export(text: str | bytes) -> Any:
    """The JSON document of an export file; GraphValidationError when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphValidationError([Problem(f"not valid JSON: {exc}")]) from exc


def _problems_of(document: Any) -> list[Problem]:
    try:
        validate_graph(document)
    except GraphValidationError as exc:
        return list(exc.problems)
    return []


def _label(sub_graph: Any, index: int) -> str:
    if isinstance(sub_graph, Mapping):
        for key in ("name", "id"):
            if sub_graph.get(key):
                return str(sub_graph[key])
    return f"sub_graphs[{index}]"


def check_export(document: Any) -> list[ExportProblem]:
    """Every problem of the export's graph and of each of its sub-graphs, at once (empty: valid)."""
    problems = [ExportProblem(p) for p in _problems_of(document)]
    sub_graphs = document.get("sub_graphs") if isinstance(document, Mapping) else None
    if sub_graphs is None:
        return problems
    if not isinstance(sub_graphs, list):
        return [*problems, ExportProblem(Problem("sub_graphs must be a list of graphs"))]
    for index, sub_graph in enumerate(sub_graphs):
        label = _label(sub_graph, index)
        problems.extend(ExportProblem(p, label) for p in _problems_of(sub_graph))
    return problems
