"""The cost goals of README "Performance and cost", per scenario, beside what a run measured: the table the
report prints and the `scenarios` / `cold_import_ms` parts of the JSON document."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from bench.costs import Cost
from bench.scenarios import ScenarioResult
from bench.startup import ImportTime

COLD_IMPORT_GOAL_MS = {"ApiFunction": 300.0}  # with compiled bytecode, as the layer ships it
WIDE_SCENARIO, WIDE_BASE = "fan-out-10000", "fan-out-1000"
WIDE_GROWTH = 1.2  # the wide fan-out's write units per node, at most this times the 1,000-way one's


@dataclass(frozen=True)
class Goal:
    figure: str  # the JSON name
    label: str
    limits: dict[str, tuple[str, float]]  # scenario -> ("<=" or "<", limit)


GOALS = (
    Goal("wru_modelled_per_node", "write units (modelled)", {"chain-200": ("<=", 6), WIDE_BASE: ("<=", 6),
                                                             "diamond": ("<=", 8)}),
    Goal("rru_per_node", "read units", {"chain-200": ("<=", 2), WIDE_BASE: ("<=", 2), "diamond": ("<=", 2.5)}),
    Goal("events_per_node", "EventBridge entries", {"chain-200": ("<=", 1), WIDE_BASE: ("<=", 1),
                                                    "diamond": ("<=", 1.2)}),
    Goal("lambda_invocations_per_node", "Lambda invocations", {"chain-200": ("<", 0.5), WIDE_BASE: ("<=", 1),
                                                               "diamond": ("<=", 1)}),
    Goal("cost_vs_step_functions", "cost vs Step Functions", {"chain-200": ("<=", 0.2), WIDE_BASE: ("<=", 0.2),
                                                              "diamond": ("<=", 0.25)}),
)  # fmt: skip


def figures(result: ScenarioResult, cost: Cost | None) -> dict[str, Any]:
    """One scenario's part of the JSON document (issue 13's shape)."""
    per = result.per_node
    return {
        "status": result.status,
        "node_executions": result.node_executions,
        "wru_modelled_per_node": round(per["dynamodb_write_units_modelled"], 3),
        "rru_per_node": round(per["dynamodb_read_units"], 3),
        "events_per_node": round(per["eventbridge_entries"], 3),
        "lambda_invocations_per_node": round(per["lambda_invocations"], 3),
        "cost_per_million_usd": round(cost.total, 3) if cost else None,
        "cost_vs_step_functions": round(cost.step_functions_ratio, 4) if cost else None,
    }


def scenario_figures(results: Sequence[ScenarioResult], costs: Sequence[Cost]) -> dict[str, dict[str, Any]]:
    by_name = {c.scenario: c for c in costs}
    return {r.name: figures(r, by_name.get(r.name)) for r in results}


def cold_import_ms(imports: Sequence[ImportTime]) -> dict[str, float]:
    return {i.function: round(i.import_ms, 1) for i in imports if i.error is None}


def _meets(value: float | None, limit: tuple[str, float]) -> bool:
    if value is None:
        return False
    op, bound = limit
    return value < bound if op == "<" else value <= bound


def verdicts(scenarios: dict[str, dict[str, Any]], imports: dict[str, float]) -> list[tuple[str, str, str, str, bool]]:
    """(scenario, figure, measured, goal, met) for every goal whose scenario ran."""
    rows: list[tuple[str, str, str, str, bool]] = []
    for goal in GOALS:
        for name, limit in goal.limits.items():
            if name in scenarios:
                value = scenarios[name][goal.figure]
                shown = "-" if value is None else f"{value:.2f}"
                rows.append((name, goal.label, shown, f"{limit[0]} {limit[1]:g}", _meets(value, limit)))
    if WIDE_SCENARIO in scenarios and WIDE_BASE in scenarios:
        wide, base = scenarios[WIDE_SCENARIO], scenarios[WIDE_BASE]
        ratio = wide["wru_modelled_per_node"] / base["wru_modelled_per_node"]
        met = wide["status"] == "COMPLETED" and ratio <= WIDE_GROWTH
        rows.append((WIDE_SCENARIO, f"write units vs {WIDE_BASE}", f"{ratio:.2f}x", f"<= {WIDE_GROWTH}x", met))
    for function, goal_ms in COLD_IMPORT_GOAL_MS.items():
        if function in imports:
            ms = imports[function]
            rows.append((function, "cold import (bytecode)", f"{ms:.0f} ms", f"<= {goal_ms:.0f} ms", ms <= goal_ms))
    return rows


def print_goals(
    scenarios: dict[str, dict[str, Any]],
    imports: dict[str, float],
    out: TextIO,
    section: Callable[..., None],
    table: Callable[..., str],
) -> None:
    section(
        out,
        "0. Goals (README, Performance and cost)",
        "Per node execution, beside its goal; the fan-out of 10,000 (full run only) beside the 1,000-way one.",
    )
    rows = [[s, f, m, g, "met" if ok else "NOT MET"] for s, f, m, g, ok in verdicts(scenarios, imports)]
    print(table(["scenario", "figure", "measured", "goal", ""], rows, left=2, left_last=True), file=out)
