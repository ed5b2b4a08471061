"""The text report (tables on stdout) and the JSON document of a benchmark run."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from bench import costs, goals
from bench.costs import Cost
from bench.scenarios import ScenarioResult
from bench.startup import ImportTime, LayerSize

WIDTH = 118
ITEM_LIMIT_BYTES = 400 * 1024  # DynamoDB's maximum item size
GROWING_ITEM_ATTRIBUTES = 100  # an item with this many attributes grows with the graph's width


@dataclass
class BenchReport:
    mode: str
    environment: dict[str, Any]
    scenarios: list[ScenarioResult]
    costs: list[Cost]
    imports: list[ImportTime]
    layer: LayerSize | None
    ok: bool

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = dataclasses.asdict(self)
        document["scenario_details"] = document.pop("scenarios")  # everything measured, per scenario
        document["scenarios"] = goals.scenario_figures(self.scenarios, self.costs)  # the goals' figures
        document["cold_import_ms"] = goals.cold_import_ms(self.imports)
        document["prices"] = {
            "dynamodb_write_request_unit_per_million": costs.DYNAMODB_WRITE_PER_MILLION,
            "dynamodb_read_request_unit_per_million": costs.DYNAMODB_READ_PER_MILLION,
            "eventbridge_custom_event_per_million": costs.EVENTBRIDGE_PER_MILLION,
            "lambda_request_per_million": costs.LAMBDA_REQUEST_PER_MILLION,
            "lambda_gb_second_arm64": costs.LAMBDA_GB_SECOND,
            "lambda_memory_gb": costs.LAMBDA_MEMORY_GB,
            "step_functions_standard_transition_per_million": costs.STEP_FUNCTIONS_PER_MILLION,
        }
        return document


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1, left_last: bool = False) -> str:
    """A plain table: the first `left` columns (names) and, with `left_last`, the last one (text) left-aligned, the
    others (numbers) right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    lefts = {*range(left), *([len(widths) - 1] if left_last else [])}

    def line(row: list[str]) -> str:
        padded = (c.ljust(w) if i in lefts else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _section(out: TextIO, title: str, *explanation: str) -> None:
    print(f"\n{title}\n{'=' * len(title)}", file=out)
    for paragraph in explanation:
        print(textwrap.fill(paragraph, WIDTH), file=out)
    if explanation:
        print(file=out)


def _n(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.995 else f"${value:,.3f}"


def _kb(size: int) -> str:
    return f"{size / 1024:,.1f} KB" if size >= 1024 else f"{size} B"


def print_report(report: BenchReport, out: TextIO) -> None:
    env = report.environment
    print(f"agentflow benchmark ({report.mode}), {env['started_at']}", file=out)
    print(
        f"local stack in process: DynamoDB Local {env['dynamodb_local']} (in memory), LocalEventBus with "
        f"{env['concurrency']} workers, {env['cpus']} CPUs, Python {env['python']}. Shared machine: read counts and "
        "ratios; times are indicative only.",
        file=out,
    )
    scenario_figures = goals.scenario_figures(report.scenarios, report.costs)
    goals.print_goals(scenario_figures, goals.cold_import_ms(report.imports), out, _section, table)
    _runs(report, out)
    _per_node(report, out)
    _calls(report, out)
    _timing(report, out)
    _costs(report, out)
    _startup(report, out)
    _observations(report, out)
    notes = [f"{s.name}: {note}" for s in report.scenarios for note in s.notes]
    if notes or not report.ok:
        _section(out, "Problems")
        for note in notes:
            print(f"  - {note}", file=out)
        for s in report.scenarios:
            if s.status != "COMPLETED" or not s.outputs_ok:
                print(f"  - {s.name}: {s.status}, outputs {'as expected' if s.outputs_ok else 'WRONG'}", file=out)


def _runs(report: BenchReport, out: TextIO) -> None:
    _section(out, "1. Runs")
    rows = [
        [
            s.name,
            s.description,
            s.status,
            "ok" if s.outputs_ok else "WRONG",
            s.node_executions,
            _n(s.wall_seconds),
            _n(s.throughput, 1),
            f"{s.handler_retries} / {s.dead_letters}",
        ]
        for s in report.scenarios
    ]
    headers = ["scenario", "graph", "status", "outputs", "node execs", "wall s", "node execs/s"]
    print(table([*headers, "retries / dead letters"], rows, 4), file=out)


def _per_node(report: BenchReport, out: TextIO) -> None:
    _section(
        out,
        "2. Per node execution",
        "DynamoDB figures are the run's STATS item (the sum of the ConsumedCapacity every request returned, as "
        "DynamoDB Local reports it), divided by the node executions queued. 'WRU AWS' re-prices what DynamoDB Local "
        "gets wrong (see bench/dynamo.py): each TransactWriteItems item at 2 units per started KB of that item (Local "
        "rounds the whole transaction once), GSI writes of a transaction at 1x (Local doubles them), failed "
        "conditional writes at the item's size (Local reports none); 'GSI' is the part of it spent on global secondary "
        "indexes. EventBridge entries are those the engine published (NodeExecutionQueued and ExecutionStatusChanged); "
        "Lambda invocations are handler attempts the bus made (retries included).",
    )
    rows = []
    for s in report.scenarios:
        p = s.per_node
        rows.append(
            [
                s.name,
                _n(p["dynamodb_requests"]),
                _n(p["dynamodb_write_units"]),
                _n(p["dynamodb_write_units_modelled"]),
                _n(p["dynamodb_index_write_units_modelled"]),
                _n(p["dynamodb_read_units"]),
                _n(p["eventbridge_entries"]),
                _n(p["lambda_invocations"]),
                f"{s.transactions} / {s.transaction_items}",
                s.failed_writes,
            ]
        )
    headers = ["scenario", "DDB requests", "WRU Local", "WRU AWS", "of which GSI", "RRU", "EB entries", "Lambda inv"]
    print(table([*headers, "transactions / items", "failed writes"], rows), file=out)
    kinds = sorted({kind for s in report.scenarios for kind in s.largest_items})
    sizes = [
        [s.name, *(_kb(s.largest_items[k].bytes) if k in s.largest_items else "-" for k in kinds)]
        for s in report.scenarios
    ]
    print("\nLargest item of each kind after the run (writes bill the larger of the item before and after):", file=out)
    print(table(["scenario", *kinds], sizes), file=out)


def _calls(report: BenchReport, out: TextIO) -> None:
    _section(
        out,
        "3. Where the units go",
        "Requests grouped by the Store method that made them, the operation and the item families touched (PK/SK "
        "kinds: META = the execution, NODE = a node execution, PINS = a node's delivery counters, OUT = a recorded "
        "output, STATS = costs, GRAPH = a graph version). Per node execution, by modelled write units.",
    )
    for s in report.scenarios:
        nodes = max(1, s.node_executions)
        rows = [
            [
                c.call,
                _n(c.requests / nodes),
                _n(c.local_write_units / nodes),
                _n(c.modelled_write_units / nodes),
                _n(c.modelled_index_units / nodes),
                _n(c.read_units / nodes),
                f"{100 * c.modelled_write_units / s.modelled_write_units:.0f}%" if s.modelled_write_units else "-",
                c.failed,
                _n(c.mean_ms, 1),
            ]
            for c in s.calls
        ]
        print(f"{s.name}:", file=out)
        headers = ["store call / operation / items", "req", "WRU Local", "WRU AWS", "GSI", "RRU", "share of WRU"]
        print(textwrap.indent(table([*headers, "failed", "ms/req"], rows), "  "), file=out)
        print(file=out)


def _timing(report: BenchReport, out: TextIO) -> None:
    _section(
        out,
        "4. Engine time per node vs raw DynamoDB time",
        "Engine time = wall time of Engine.run_node (one Lambda invocation, without the Powertools wrapper), "
        "averaged over node executions. Two yardsticks, both client-side boto3 request times: (a) in the run: "
        "botocore hooks time every DynamoDB and PutEvents request the handlers make, under the run's own "
        "concurrency; 'other' is the rest (the engine's Python, the block, waiting for the GIL). (b) idle: right "
        "after the run, GetItem / UpdateItem / 2-item TransactWriteItems are timed one at a time on the same table "
        "(median), and the node's own request mix is priced at those latencies. Ratio = engine / DynamoDB.",
    )
    rows = []
    for s in report.scenarios:
        t = s.timing
        rows.append(
            [
                s.name,
                _n(t.requests_per_run, 1),
                _n(t.engine_ms, 1),
                _n(t.dynamodb_ms, 1),
                _n(t.events_ms, 1),
                _n(t.other_ms, 1),
                f"{t.engine_to_dynamodb:.2f}x",
                f"{s.latency.get_ms:.1f}/{s.latency.update_ms:.1f}/{s.latency.transact_ms:.1f}",
                _n(t.raw_dynamodb_ms, 1),
                f"{t.engine_to_raw:.2f}x",
            ]
        )
    headers = ["scenario", "req/node", "engine ms", "DDB ms (a)", "PutEvents ms", "other ms", "engine/DDB (a)"]
    print(table([*headers, "idle get/upd/tx ms", "DDB ms (b)", "engine/DDB (b)"], rows), file=out)


def _costs(report: BenchReport, out: TextIO) -> None:
    _section(
        out,
        "5. Modelled AWS cost per million node executions (on-demand list prices, us-east-1)",
        f"DynamoDB ${costs.DYNAMODB_WRITE_PER_MILLION}/M write units (the 'WRU AWS' figure) and "
        f"${costs.DYNAMODB_READ_PER_MILLION}/M read units; EventBridge ${costs.EVENTBRIDGE_PER_MILLION:.2f}/M custom "
        f"events (per 64 KB chunk); Lambda ${costs.LAMBDA_REQUEST_PER_MILLION:.2f}/M requests plus "
        f"${costs.LAMBDA_GB_SECOND:.10f}/GB-s at {int(costs.LAMBDA_MEMORY_GB * 1024)} MB arm64, each invocation billed "
        "for the engine time measured in section 4 (local, against DynamoDB Local: in AWS the requests take a few "
        "ms each, so treat it as an order of magnitude). Step Functions Standard: "
        f"${costs.STEP_FUNCTIONS_PER_MILLION:.0f}/M state transitions, one per node, transitions only (its "
        "Lambda tasks would cost extra). Storage, PITR, logs and data transfer are not included.",
    )
    rows = [
        [
            c.scenario,
            _money(c.dynamodb_writes),
            _money(c.dynamodb_reads),
            _money(c.eventbridge),
            _money(c.lambda_requests),
            f"{_money(c.lambda_duration)} @{c.assumed_duration_ms}ms",
            _money(c.total),
            _money(c.total_with_local_write_units),
            _money(c.step_functions),
            f"{c.step_functions_ratio:.2f}x",
        ]
        for c in report.costs
    ]
    headers = ["scenario", "DDB writes", "DDB reads", "EventBridge", "Lambda req", "Lambda duration", "total"]
    print(table([*headers, "(Local WRU)", "Step Functions", "total / SFN"], rows), file=out)
    per_10ms = costs.lambda_duration_cost(1.0, 10)
    note = (
        f"Every 10 ms of Lambda duration per node execution adds {_money(per_10ms)} per million; '(Local WRU)' is "
        "the total priced with DynamoDB Local's own write-unit figure instead."
    )
    print("\n" + textwrap.fill(note, WIDTH), file=out)


def _startup(report: BenchReport, out: TextIO) -> None:
    _section(
        out,
        "6. Cold start: handler import and layer size",
        "Each handler module imported in a fresh interpreter with the function's environment (template names, "
        "dummy credentials): 'cached' with every .pyc available; 'as Lambda' with an unpacked copy of the layer first "
        "on sys.path and no .pyc for it, as Lambda loads a sam-built layer from read-only /opt (the interpreter's "
        "own modules and boto3 stay cached, as in the runtime image). Median of the runs. Where the time goes: "
        "python -X importtime in the Lambda-like case (which slows it somewhat), each module's own time summed by "
        "top-level package; '(module code)' is what no import accounts for, e.g. creating boto3 clients.",
    )
    rows = []
    for i in report.imports:
        heaviest = ", ".join(f"{name} {ms:.0f}" for name, ms in i.heaviest[:5])
        if i.error:
            rows.append([i.function, i.handler, "-", "-", "-", f"error: {i.error}"])
        else:
            rows.append(
                [i.function, i.handler, _n(i.import_ms, 0), _n(i.lambda_import_ms, 0), _n(i.process_ms, 0), heaviest]
            )
    headers = ["function", "handler", "import ms cached", "import ms as Lambda", "process ms", "import ms by package"]
    print(table(headers, rows, 2, left_last=True), file=out)
    layer = report.layer
    if layer is None:
        return
    summary = (
        f"Engine layer ({layer.source}): {layer.files:,} files, {layer.bytes / 1e6:.1f} MB unzipped, "
        f"{layer.zipped_bytes / 1e6:.1f} MB zipped (Lambda's limits: 250 MB unzipped for a function and its layers, "
        "50 MB zipped for a direct upload)."
    )
    print("\n" + textwrap.fill(summary, WIDTH), file=out)
    print(table(["part", "MB"], [[name, f"{size / 1e6:.2f}"] for name, size in layer.parts]), file=out)
    for note in layer.notes:
        print(textwrap.fill(f"note: {note}", WIDTH), file=out)


def _observations(report: BenchReport, out: TextIO) -> None:
    _section(out, "7. Observations (computed from the figures above)")
    lines: list[str] = []
    for s in report.scenarios:
        nodes = max(1, s.node_executions)
        per_node = s.per_node
        if s.calls and s.modelled_write_units:
            top = s.calls[0]
            lines.append(
                f"{s.name}: '{top.call}' takes {top.modelled_write_units / s.modelled_write_units:.0%} of the modelled "
                f"write units ({top.modelled_write_units / nodes:.2f} per node execution); GSI writes take "
                f"{per_node['dynamodb_index_write_units_modelled'] / per_node['dynamodb_write_units_modelled']:.0%}; "
                f"DynamoDB Local's own write-unit figure is "
                f"{per_node['dynamodb_write_units'] / per_node['dynamodb_write_units_modelled']:.2f}x the modelled one."
            )
        for kind, item in s.largest_items.items():
            if item.attributes >= GROWING_ITEM_ATTRIBUTES and kind != "GRAPH":
                per_attribute = item.bytes / item.attributes
                lines.append(
                    f"{s.name}: {item.sort_key} grew to {item.attributes:,} attributes ({_kb(item.bytes)}). Every "
                    "write to it is billed on its whole size, so the units grow with the square of the fan-out; at "
                    f"~{per_attribute:.0f} B per attribute it hits DynamoDB's 400 KB item limit after "
                    f"~{ITEM_LIMIT_BYTES / per_attribute:,.0f} attributes."
                )
        t = s.timing
        if t.engine_ms:
            lines.append(
                f"{s.name}: of a node execution's {t.engine_ms:.0f} ms, DynamoDB requests take "
                f"{t.dynamodb_ms / t.engine_ms:.0%} ({t.requests_per_run:.1f} requests, one after another), PutEvents "
                f"{t.events_ms / t.engine_ms:.0%}, everything else {t.other_ms / t.engine_ms:.0%}."
            )
    for c in report.costs:
        lines.append(
            f"{c.scenario}: modelled ${c.total:.2f} per million node executions, {c.step_functions_ratio:.2f}x Step "
            f"Functions Standard's transitions alone; DynamoDB writes are {c.dynamodb_writes / c.total:.0%} of it."
        )
    for i in report.imports:
        if not i.error:
            lines.append(
                f"{i.function}: importing the handler takes {i.import_ms:.0f} ms with .pyc and "
                f"{i.lambda_import_ms:.0f} ms as Lambda loads the layer (no .pyc): "
                f"{i.lambda_import_ms - i.import_ms:.0f} ms of each cold start is compiling the layer's modules."
            )
    for line in lines:
        print(textwrap.fill(line, WIDTH, initial_indent="  - ", subsequent_indent="    "), file=out)
