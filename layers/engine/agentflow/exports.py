"""AutoGPT exports as a whole: a graph and the `sub_graphs` its AgentExecutorBlock nodes call. `check_export`
validates every graph of an export without storing or running anything, for `agentflow validate` and
`POST /graphs/validate` (README, "Validating exports"); `plan_import` prepares an export for storing, each
sub-graph as a graph of the user and each AgentExecutorBlock node pointed at its stored copy (README, "Sub-graphs")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentflow.blocks.agent import AGENT_EXECUTOR_ID, AgentExecutorBlock, schema_names
from agentflow.graph import GraphValidationError, Problem, ValidGraph, validate_graph

__all__ = ["ExportProblem", "ImportPlan", "check_export", "load_export", "plan_import"]


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


# -- importing an export with its sub-graphs -------------------------------------------------------------------

GraphExists = Callable[[str, int], bool]  # (graph id, version) -> whether the importing user has it


@dataclass(frozen=True)
class _SubGraph:
    label: str
    old_id: str | None
    version: int | None
    inputs: frozenset[str]
    outputs: frozenset[str]
    new_id: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class ImportPlan:
    """What to store: each sub-graph under a new id (version 1), then the export's own graph, every
    AgentExecutorBlock node pointed at the stored copy of the graph it calls."""

    sub_graphs: list[tuple[str, ValidGraph]]
    main: ValidGraph


def _sub_graphs(document: Mapping[str, Any]) -> list[_SubGraph]:
    subs = []
    for index, sub in enumerate(document.get("sub_graphs") or []):
        if not isinstance(sub, Mapping):
            raise GraphValidationError([Problem(f"sub_graphs[{index}] is not a graph object")])
        version = sub.get("version")
        subs.append(
            _SubGraph(
                label=_label(sub, index),
                old_id=str(sub["id"]) if sub.get("id") else None,
                version=version if isinstance(version, int) else None,
                inputs=schema_names(sub.get("input_schema")),
                outputs=schema_names(sub.get("output_schema")),
                new_id=str(uuid.uuid4()),
                document=sub,
            )
        )
    return subs


def _is_agent_node(node: Any) -> bool:
    return isinstance(node, Mapping) and node.get("block_id") in (AGENT_EXECUTOR_ID, AgentExecutorBlock.name())


def _called(node: Mapping[str, Any], subs: list[_SubGraph], exists: GraphExists) -> _SubGraph | str | None:
    """The sub-graph a node calls (AutoGPT exports carry the sub-graph's id in `sub_graphs`, while the node may
    still name the id it had before export: then its version and input/output names pick it), "own" when it
    calls a graph the user has, None when neither."""
    data = node.get("input_default") or {}
    graph_id, version = str(data.get("graph_id", "")), data.get("graph_version")
    by_id = [s for s in subs if s.old_id == graph_id]
    if by_id:
        return by_id[0]
    inputs, outputs = schema_names(data.get("input_schema")), schema_names(data.get("output_schema"))
    candidates = [s for s in subs if s.version == version and s.inputs == inputs and s.outputs == outputs]
    if len(candidates) > 1:
        named = [s for s in candidates if s.label == data.get("agent_name")]
        candidates = named if len(named) == 1 else candidates
    if len(candidates) == 1:
        return candidates[0]
    if isinstance(version, int) and graph_id and exists(graph_id, version):
        return "own"
    return None


def _repoint(
    document: Mapping[str, Any], subs: list[_SubGraph], user_id: str, exists: GraphExists, where: str
) -> tuple[dict[str, Any], list[Problem]]:
    """A copy of `document` whose AgentExecutorBlock nodes call the stored copies; problems for the others."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    problems: list[Problem] = []
    for node in copy.get("nodes") or []:
        if not _is_agent_node(node):
            continue
        data = node.setdefault("input_default", {})
        target = _called(node, subs, exists)
        if target is None:
            called = f"graph {data.get('graph_id')!r} version {data.get('graph_version')!r}"
            message = f"{where}AgentExecutorBlock calls {called}, which is neither in the export's sub_graphs nor yours"
            problems.append(Problem(message, str(node.get("id")), "graph_id"))
            continue
        data["user_id"] = user_id
        if isinstance(target, _SubGraph):
            data["graph_id"], data["graph_version"] = target.new_id, 1
    return copy, problems


def _validated(document: Mapping[str, Any], where: str, problems: list[Problem]) -> ValidGraph | None:
    try:
        return validate_graph(document)
    except GraphValidationError as exc:
        problems.extend(Problem(where + p.message, p.node_id, p.pin) for p in exc.problems)
        return None


def plan_import(document: Any, user_id: str, exists: GraphExists) -> ImportPlan:
    """Validate an export and its sub-graphs and point every AgentExecutorBlock node at the graph it calls (a
    sub-graph of the export, stored anew, or a graph the user has); GraphValidationError lists every problem."""
    if not isinstance(document, Mapping):
        raise GraphValidationError([Problem("a graph must be a JSON object with 'nodes' and 'links'")])
    subs = _sub_graphs(document)
    problems: list[Problem] = []
    stored: list[tuple[str, ValidGraph]] = []
    for sub in subs:
        where = f"sub-graph {sub.label!r}: "
        repointed, found = _repoint(sub.document, subs, user_id, exists, where)
        problems.extend(found)
        if (valid := _validated(repointed, where, problems)) is not None:
            stored.append((sub.new_id, valid))
    repointed, found = _repoint({k: v for k, v in document.items() if k != "sub_graphs"}, subs, user_id, exists, "")
    problems.extend(found)
    main = _validated(repointed, "", problems)
    if problems or main is None:
        raise GraphValidationError(problems)
    return ImportPlan(stored, main)
