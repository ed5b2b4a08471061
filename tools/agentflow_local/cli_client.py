"""`agentflow graphs|execute|runs`: the terminal client of a stack's HTTP API, local or deployed (README, "The
terminal client"). The stack is --url / AGENTFLOW_URL (default: the running `agentflow serve`), the key --key /
AGENTFLOW_API_KEY (default: the local dev key); see agentflow_local.client.

Tables by default; --json prints exactly one JSON document, the API's answer. Exit codes: 0 done; 2 the API
refused the request (a 4xx, shown as `error: STATUS CODE: message` on stderr) or the command line is wrong; 1 any
other failure (no answer, a 5xx). `execute --wait` and `runs watch` show the run live (agentflow_local.live_view, on
stderr) and end as `agentflow run` does: 0 COMPLETED, 1 FAILED or TERMINATED, 3 waiting for a human review.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentflow_local.cli_follow import ENDS, EXIT_FAILED, EXIT_INVALID, EXIT_OK, follow
from agentflow_local.cli_inputs import UsageError, parse_inputs
from agentflow_local.client import Client, ClientError, resolve
from agentflow_local.live_view import make_view

EXIT_INTERRUPTED = 130  # Ctrl-C while watching: the run goes on
PAGE = 100  # the API's largest page


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the stack's API URL (default: AGENTFLOW_URL, else the running local stack)")
    common.add_argument("--key", help="the API key (default: AGENTFLOW_API_KEY, else the local dev key)")
    common.add_argument("--json", action="store_true", help="print the API's answer as one JSON document")
    return common


def register(commands: Any) -> None:
    """Add `graphs`, `execute` and `runs` to the CLI's subcommands."""
    common = _common()

    def leaf(parent: Any, name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=text, description=text)
        return parser

    graphs = commands.add_parser("graphs", help="list, push and show the graphs of a stack (local or deployed)")
    actions = graphs.add_subparsers(dest="client_action", required=True, metavar="ACTION")
    leaf(actions, "list", "your graphs, newest first")
    push = leaf(actions, "push", "create a graph from an export (version 1), or save a new active version of one")
    push.add_argument("file", type=Path, metavar="FILE", help="a graph in the AutoGPT export format")
    push.add_argument("--graph-id", metavar="ID", help="save FILE as a new (active) version of this graph")
    leaf(actions, "show", "a graph's active version: its inputs and outputs").add_argument("graph_id", metavar="ID")
    execute = leaf(
        commands, "execute", "start a run of a graph; with --wait, show it live to its end, then its outputs"
    )
    execute.add_argument("graph_id", metavar="GRAPH_ID")
    execute.add_argument(
        "--input", action="append", default=[], metavar="NAME=VALUE", help="a graph input (JSON or text)"
    )
    execute.add_argument("--inputs", metavar="JSON", help="all graph inputs as one JSON object")
    execute.add_argument(
        "--wait", action="store_true", help="show the run live until it ends (exit 0/1, or 3 for a review)"
    )
    execute.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="--wait's limit (600)")
    runs = commands.add_parser("runs", help="list, show, stop and resume runs, and their status history")
    run_actions = runs.add_subparsers(dest="client_action", required=True, metavar="ACTION")
    listing = leaf(run_actions, "list", "runs newest first: of one graph, or of all your graphs merged")
    listing.add_argument("--graph", metavar="ID", help="only this graph's runs")
    listing.add_argument("--status", metavar="S", help="only runs with this status (e.g. COMPLETED)")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    for name, text in (
        ("show", "a run's status, outputs and node executions"),
        ("stop", "stop a run (TERMINATED)"),
        ("resume", "resume a stopped run"),
        ("events", "a run's status history, oldest first"),
    ):
        leaf(run_actions, name, text).add_argument("execution_id", metavar="EID")
    watch = leaf(
        run_actions,
        "watch",
        "show a run live until it ends, then its outputs (exit 0 COMPLETED, 1 FAILED/TERMINATED, 3 review); "
        "--json: the final run, as `execute --wait --json`",
    )
    watch.add_argument("execution_id", metavar="EID")
    watch.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="stop watching after this long (600)"
    )


def client_command(args: argparse.Namespace) -> int:
    """Run one client command; an API error is one line on stderr and exit 2 (4xx) or 1 (anything else)."""

    try:
        return COMMANDS[(args.command, getattr(args, "client_action", None))](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ClientError as exc:
        print(exc.line(), file=sys.stderr)
        return EXIT_INVALID if exc.status is not None and 400 <= exc.status < 500 else EXIT_FAILED
    except KeyboardInterrupt:
        print("\nagentflow: stopped watching; the run goes on (`agentflow runs stop EID` stops it)", file=sys.stderr)
        return EXIT_INTERRUPTED


def _client(args: argparse.Namespace) -> Client:
    return Client(resolve(args.url, args.key))


def _emit(args: argparse.Namespace, answer: Any, human: Callable[[Any], None]) -> None:
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        human(answer)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


# -- graphs


def graphs_list(args: argparse.Namespace) -> int:
    def human(answer: Any) -> None:
        rows = [
            (g["graph_id"], g.get("name"), g.get("active_version"), g.get("latest_version"), g.get("updated_at"))
            for g in answer["graphs"]
        ]
        table(("GRAPH_ID", "NAME", "ACTIVE", "LATEST", "UPDATED"), rows)

    _emit(args, _client(args).list_graphs(), human)
    return EXIT_OK


def graphs_push(args: argparse.Namespace) -> int:

    try:
        document = json.loads(args.file.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"{args.file} is not JSON: {exc}") from exc
    client = _client(args)
    answer = client.update_graph(args.graph_id, document) if args.graph_id else client.create_graph(document)
    verb = "saved" if args.graph_id else "created"
    _emit(args, answer, lambda a: print(f"{verb} graph {a['graph_id']} version {a['version']} ({a.get('name')})"))
    return EXIT_OK


def graphs_show(args: argparse.Namespace) -> int:
    def human(g: Any) -> None:
        print(f"graph    {g['graph_id']}  {g.get('name')}")
        print(f"version  {g['version']} (active {g['active_version']}, latest {g['latest_version']})")
        print(f"updated  {g.get('updated_at')}")
        required = set(g.get("required_inputs") or [])
        names = [f"{n}{' (required)' if n in required else ''}" for n in g.get("input_names") or []]
        print(f"inputs   {', '.join(names) or '(none)'}")
        print(f"outputs  {', '.join(g.get('output_names') or []) or '(none)'}")
        nodes = (g.get("graph") or {}).get("nodes") or []
        print(f"nodes    {len(nodes)}")

    _emit(args, _client(args).get_graph(args.graph_id), human)
    return EXIT_OK


# -- execute


def execute(args: argparse.Namespace) -> int:

    inputs = parse_inputs(args.input, args.inputs)
    client = _client(args)
    started = client.execute(args.graph_id, inputs)
    if not args.wait:
        _emit(args, started, lambda a: print(f"{a['execution_id']}  {a['status']}"))
        return EXIT_OK
    return watch_to_end(args, client, started["execution_id"])


def watch_to_end(args: argparse.Namespace, client: Client, execution_id: str) -> int:
    """Follow the run with the live view (none with --json), then print it; exit as `agentflow run` does."""
    report = follow(client, execution_id, make_view(sys.stderr, quiet=args.json), args.timeout)
    _emit(args, report, print_outcome)
    return ENDS[report["status"]]


def print_outcome(report: Any) -> None:
    print(f"{report['execution_id']}  {report['status']}")
    if report.get("error"):
        print(f"error: {report['error']}")
    if report["status"] == "REVIEW":
        waiting = [n for n in report.get("nodes") or [] if n.get("review_id") and n.get("status") == "WAITING"]
        for node in waiting:
            print(f"  waits for review {node['review_id']} (node {node['node_id']}): decide it with POST /reviews/ID")
    print("outputs:")
    outputs = report.get("outputs") or {}
    if not outputs:
        print("  (none)")
    for name, values in outputs.items():
        print(f"  {name}: {', '.join(json.dumps(v) for v in values) if values else '(no value)'}")


# -- runs


def runs_list(args: argparse.Namespace) -> int:
    """One graph's runs, or (no --graph) every graph's runs merged newest first; --status filters here, since the
    API has no such filter, and pages are read until --limit matching runs are found."""

    if args.limit < 1:
        raise UsageError("--limit must be 1 or more")
    client = _client(args)
    if args.graph and not args.status and args.limit <= PAGE:
        answer = client.executions(args.graph, args.limit)  # one page: the API's answer as it is
    else:
        graph_ids = [args.graph] if args.graph else [g["graph_id"] for g in client.list_graphs()["graphs"]]
        found = [run for graph_id in graph_ids for run in _runs_of(client, graph_id, args.limit, args.status)]
        found.sort(key=lambda run: run.get("created_at") or "", reverse=True)
        answer = {"executions": found[: args.limit]}

    def human(a: Any) -> None:
        rows = [
            (
                r["execution_id"],
                r["graph_id"],
                r.get("graph_version"),
                r["status"],
                r.get("created_at"),
                r.get("ended_at"),
            )
            for r in a["executions"]
        ]
        table(("EXECUTION_ID", "GRAPH_ID", "VERSION", "STATUS", "CREATED", "ENDED"), rows)

    _emit(args, answer, human)
    return EXIT_OK


def _runs_of(client: Client, graph_id: str, limit: int, status: str | None) -> list[Any]:
    runs: list[Any] = []
    cursor = None
    while len(runs) < limit:
        page = client.executions(graph_id, PAGE if status else min(limit, PAGE), cursor)
        runs += [run for run in page["executions"] if not status or run["status"] == status.upper()]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return runs[:limit]


def runs_show(args: argparse.Namespace) -> int:
    def human(r: Any) -> None:
        print(f"execution  {r['execution_id']}  {r['status']}")
        print(f"graph      {r['graph_id']} version {r['graph_version']}")
        print(f"created    {r.get('created_at')}   ended {r.get('ended_at')}")
        print(f"inputs     {json.dumps(r.get('inputs'))}")
        if r.get("error"):
            print(f"error      {r['error']}")
        rows = [
            (n["node_id"], n.get("seq"), n.get("block_name"), n["status"], n.get("attempts"), n.get("error"))
            for n in r.get("nodes") or []
        ]
        table(("NODE", "SEQ", "BLOCK", "STATUS", "ATTEMPTS", "ERROR"), rows)
        print("outputs:")
        for name, values in (r.get("outputs") or {}).items():
            print(f"  {name}: {', '.join(json.dumps(v) for v in values) if values else '(no value)'}")

    _emit(args, _client(args).execution(args.execution_id), human)
    return EXIT_OK


def runs_control(args: argparse.Namespace) -> int:
    answer = _client(args).control(args.execution_id, args.client_action)
    _emit(args, answer, lambda a: print(f"{a['execution_id']}  {a['status']}"))
    return EXIT_OK


def runs_watch(args: argparse.Namespace) -> int:
    return watch_to_end(args, _client(args), args.execution_id)


def runs_events(args: argparse.Namespace) -> int:
    def human(a: Any) -> None:
        table(("STATUS", "AT"), [(e["status"], e.get("at")) for e in a["events"]])

    _emit(args, _client(args).events(args.execution_id), human)
    return EXIT_OK


COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace], int]] = {
    ("graphs", "list"): graphs_list,
    ("graphs", "push"): graphs_push,
    ("graphs", "show"): graphs_show,
    ("execute", None): execute,
    ("runs", "list"): runs_list,
    ("runs", "show"): runs_show,
    ("runs", "stop"): runs_control,
    ("runs", "resume"): runs_control,
    ("runs", "events"): runs_events,
    ("runs", "watch"): runs_watch,
}
