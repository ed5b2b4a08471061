"""The `agentflow` command line.

    agentflow run GRAPH.json [--input NAME=VALUE ...] [--inputs JSON] [--redeliver N] [--json] [--timeout SECONDS]

Runs the graph to its end and shows it live (on stderr: a display redrawn in place on a terminal, a plain line every
AGENTFLOW_PROGRESS_INTERVAL seconds, default 5, elsewhere), then prints its outputs (on stdout). While
`agentflow serve` runs on the same data folder with the same settings, the run goes to it (as the user `local`,
over its HTTP API: no second DynamoDB Local, no second bus); otherwise, and always with --redeliver or
AGENTFLOW_DYNAMODB_ENDPOINT, it starts a local stack of its own.

Exit codes: 0 the run COMPLETED; 1 it FAILED or was TERMINATED (or the local stack failed); 2 the graph or the
inputs are invalid, with every problem on stderr; 3 it waits for a human review, which only the HTTP API can
decide (run the graph under `agentflow serve`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agentflow.exports import load_export
from agentflow.graph import GraphValidationError, ValidGraph, validate_graph, validate_inputs
from agentflow.statuses import ExecutionStatus
from agentflow_local import cli_client, cli_credentials, cli_validate
from agentflow_local.cli_follow import follow
from agentflow_local.cli_inputs import UsageError, parse_inputs
from agentflow_local.client import Client, ClientError, Settings
from agentflow_local.dynamodb import DynamoDBLocalError, project_root
from agentflow_local.files import LocalFiles
from agentflow_local.live_view import View, make_view
from agentflow_local.reuse import RUN_USER, find_serve

if TYPE_CHECKING:  # the local stack is imported only when one is started: a run on a serve skips its start-up cost
    from agentflow_local.stack import LocalStack

LOCAL_USER = RUN_USER
DYNAMODB_ENDPOINT_ENV = "AGENTFLOW_DYNAMODB_ENDPOINT"  # = agentflow_local.stack's: set, the caller chose the storage
EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_REVIEW = 0, 1, 2, 3
FINAL = {ExecutionStatus.COMPLETED.value, ExecutionStatus.FAILED.value, ExecutionStatus.TERMINATED.value}
WAIT_ENDS = {*FINAL, ExecutionStatus.REVIEW.value}  # a review only the HTTP API can decide: nothing more to wait for
NODE_KEYS = (
    "node_id",
    "block_id",
    "block_name",
    "status",
    "attempts",
    "attempt_log",
    "inputs",
    "outputs",
    "error",
    "stats",
    "child_execution_id",
    "review_id",
)
STALL_SECONDS = 15.0  # nothing in flight and no progress for this long: an event was lost


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentflow", description="Run AutoGPT-style agent graphs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a graph to its end (on the running `agentflow serve`, else a local stack of its own), shown live",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("graph", type=Path, metavar="GRAPH.json", help="a graph in the AutoGPT export format")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a graph input; VALUE is parsed as JSON when it is valid JSON, else taken as a string",
    )
    run.add_argument("--inputs", metavar="JSON", help="all graph inputs as one JSON object")
    run.add_argument(
        "--redeliver",
        type=int,
        default=0,
        metavar="N",
        help="deliver every event N more times, in random order (at-least-once check; always on a stack of its own)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the live view")
    serve = commands.add_parser(
        "serve", help="serve the HTTP API, the event bus and DynamoDB Local on 127.0.0.1 until Ctrl-C"
    )
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    cli_credentials.register(commands)
    cli_validate.register(commands)
    cli_client.register(commands)
    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create an API key and print it (once) on stdout")
    create.add_argument("--user", required=True, help="the user the key acts as (1-64 letters, digits, ._@-)")
    create.add_argument("--name", default="cli", help="a label for the key")
    run.add_argument(
        "--timeout", type=float, default=600.0, metavar="SECONDS", help="stop the run after this long (default 600)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "serve":
        return serve_command(args)
    if args.command == "keys":
        return keys_command(args)
    if args.command == "credentials":
        return cli_credentials.credentials_command(args)
    if args.command == "validate":
        return cli_validate.validate_command(args)
    if args.command in ("graphs", "execute", "runs"):
        return cli_client.client_command(args)
    return EXIT_INVALID  # pragma: no cover - argparse rejects unknown commands


def serve_command(args: argparse.Namespace) -> int:
    from agentflow_local.server import serve

    if not 1 <= args.port <= 65535:
        print("error: --port must be between 1 and 65535", file=sys.stderr)
        return EXIT_INVALID
    try:
        serve(project_root(), port=args.port, out=sys.stdout)
    except OSError as exc:
        print(f"error: cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except DynamoDBLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def keys_command(args: argparse.Namespace) -> int:
    from agentflow_local.server import create_key_anywhere

    try:
        key = create_key_anywhere(project_root(), args.user, args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except DynamoDBLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(key)
    return EXIT_OK


def load_graph_file(path: Path) -> tuple[ValidGraph, Any]:
    """The export's own graph, validated, and the whole document (its sub-graphs are checked when stored)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return validate_graph(text), load_export(text)


def run_command(args: argparse.Namespace) -> int:
    if args.redeliver < 0:
        print("error: --redeliver must be 0 or more", file=sys.stderr)
        return EXIT_INVALID
    try:
        graph, document = load_graph_file(args.graph)
        inputs = parse_inputs(args.input, args.inputs)
        validate_inputs(graph, inputs)
        if graph.trigger_node is not None:
            raise UsageError(
                f"node {graph.trigger_node.id!r} is a trigger block: this graph starts only from its webhook; "
                "run `agentflow serve`, create the graph and its webhook, then POST signed payloads to it"
            )
    except (UsageError, GraphValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID

    serve: Settings | None = None
    try:
        view = make_view(sys.stderr, quiet=args.json)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        root = project_root()
        serve = serve_to_use(root, args.redeliver)
        if serve is not None:
            report = run_on_serve(serve, graph, document, inputs, args.timeout, view)
        else:
            report = run_on_own_stack(root, args.redeliver, graph, document, inputs, args.timeout, view)
    except GraphValidationError as exc:  # what only the stack can check: e.g. the user's credentials
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ClientError as exc:  # the serve refused the graph or its inputs (4xx), or went away
        print(exc.line(), file=sys.stderr)
        return EXIT_INVALID if exc.status is not None and 400 <= exc.status < 500 else EXIT_FAILED
    except DynamoDBLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        view.close(None)  # a display cut short by an error gives the terminal back (a no-op once closed)

    if args.json:
        print(json.dumps(public_report(report), indent=2))
    else:
        print_summary(report, sys.stdout)
    if report["status"] == ExecutionStatus.REVIEW.value:
        _say_reviews(report, serve.url if serve else None)
        return EXIT_REVIEW
    return EXIT_OK if report["status"] == ExecutionStatus.COMPLETED.value else EXIT_FAILED


def _say_reviews(report: dict[str, Any], serve_url: str | None = None) -> None:
    """`agentflow run` cannot decide a review: say which wait, and where they can be decided."""
    waiting = [n for n in report["nodes"] if n.get("review_id") and n["status"] == "WAITING"]
    print(f"agentflow: the run waits for {len(waiting)} human review(s):", file=sys.stderr)
    for node in waiting:
        print(f"  node {node['node_id']}: {(node.get('inputs') or {}).get('name', '')}", file=sys.stderr)
    if serve_url:  # it runs on the serve: the review can be decided there, and the run goes on
        print(f"  decide them with POST {serve_url}/reviews/{{id}} (as the user {LOCAL_USER})", file=sys.stderr)
        return
    print(
        "  `agentflow run` cannot decide reviews: run the graph under `agentflow serve` and decide them with "
        "POST /reviews/{id}",
        file=sys.stderr,
    )


def serve_to_use(root: Path, redeliver: int) -> Settings | None:
    """The running `agentflow serve` to run on (docs/architecture.md, "agentflow run on a running serve"), or None:
    never with --redeliver (its bus is not this run's) nor with AGENTFLOW_DYNAMODB_ENDPOINT (storage chosen)."""
    if redeliver or os.environ.get(DYNAMODB_ENDPOINT_ENV):
        return None
    found = find_serve(LocalFiles(root))
    if found.settings is not None:
        print(f"agentflow: running on the agentflow serve at {found.settings.url}", file=sys.stderr)
    elif found.note:
        print(f"agentflow: not using a running serve: {found.note}; starting a local stack", file=sys.stderr)
    return found.settings


def run_on_serve(
    serve: Settings, graph: ValidGraph, document: Any, inputs: dict[str, Any], timeout: float, view: View
) -> dict[str, Any]:
    """Store the export as a graph of the user `local` on the serve, start it, follow it to its end over HTTP."""
    client = Client(serve)
    graph_id = client.create_graph(document)["graph_id"]
    execution_id = client.execute(graph_id, inputs)["execution_id"]
    report: dict[str, Any] = follow(
        client, execution_id, view, timeout, label=graph.graph.name or "graph", owns_run=True
    )
    return report


def run_on_own_stack(
    root: Path,
    redeliver: int,
    graph: ValidGraph,
    document: Any,
    inputs: dict[str, Any],
    timeout: float,
    view: View,
) -> dict[str, Any]:
    from agentflow_local.stack import LocalStack, LocalStackConfig

    config = LocalStackConfig.for_user(
        root, redeliver=redeliver, log_level=os.environ.get("AGENTFLOW_LOG_LEVEL", "WARNING")
    )
    if not config.dynamodb_endpoint:
        print(f"agentflow: starting DynamoDB Local (data in {config.data_dir})", file=sys.stderr)
    with LocalStack(config) as stack:
        return run_on_stack(stack, graph, inputs, timeout, view=view, document=document)


def _store(stack: LocalStack, graph: ValidGraph, document: Any) -> tuple[str, int]:
    """Store the graph for the local user: an export with the sub-graphs its AgentExecutorBlock nodes call."""
    if document is not None:
        return stack.engine.import_export(LOCAL_USER, document)
    return stack.engine.register_graph(LOCAL_USER, graph)


def run_on_stack(
    stack: LocalStack,
    graph: ValidGraph,
    inputs: dict[str, Any],
    timeout: float,
    view: View,
    document: Any = None,
) -> dict[str, Any]:
    from agentflow.reports import execution_report
    from agentflow.store import Store

    engine = stack.engine
    bus = stack.bus
    assert bus is not None
    graph_id, version = _store(stack, graph, document)
    execution_id = engine.start_execution(LOCAL_USER, graph_id, version, inputs).execution_id
    viewer = Store(engine.store.client, engine.store.table, clock=engine.store.clock)  # reads not billed to the run

    def snapshot() -> dict[str, Any]:
        report = execution_report(viewer, execution_id, graph.output_names)
        assert report is not None
        return report

    view.start(execution_id, graph.graph.name or "graph")
    started = time.monotonic()
    last_change = started
    progress: tuple[Any, ...] = ()
    try:
        while True:
            execution = viewer.get_execution(execution_id)
            assert execution is not None
            if view.due():  # a whole report is read only when the view would show it
                view.show(snapshot())
            signature = (bus.delivered, execution.updated_at, execution.pending, stack.waiting_retries())
            if signature != progress:
                progress, last_change = signature, time.monotonic()
            if execution.status in WAIT_ENDS and stack.idle():
                break
            now = time.monotonic()
            # a retry waiting for its backoff is progress to come, not a stall
            if stack.idle() and not stack.waiting_retries() and now - last_change > STALL_SECONDS:
                _unstall(stack, execution_id)
                last_change = now
            if now - started > timeout:
                print(f"error: the run took longer than --timeout {timeout:.0f}s; stopping it", file=sys.stderr)
                engine.stop(execution_id)
                timeout = float("inf")
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("\nagentflow: stopping the run", file=sys.stderr)
        engine.stop(execution_id)
    stack.idle(60)
    report = snapshot()
    view.close(report)
    for letter in bus.dead_letters:
        print(f"warning: an event was dead-lettered: {letter}", file=sys.stderr)
    return report


def _unstall(stack: LocalStack, execution_id: str) -> None:
    """Something was lost (an event, a worker): do what the deployed sweeper does every minute."""
    swept = stack.engine.sweep(stale_after_seconds=STALL_SECONDS)
    print(f"agentflow: no progress for {STALL_SECONDS:.0f}s; sweeper: {swept}", file=sys.stderr)
    if not (swept.republished or swept.started or swept.finalized or swept.repaired):
        stack.engine.stop(execution_id)
        print(
            f"error: the run made no progress for {STALL_SECONDS:.0f}s and the sweeper found nothing "
            "to move on; stopped it (see dead letters below)",
            file=sys.stderr,
        )


def public_report(report: dict[str, Any]) -> dict[str, Any]:
    """The `--json` contract: exactly these keys."""
    return {
        "execution_id": report["execution_id"],
        "status": report["status"],
        "outputs": report["outputs"],
        "error": report["error"],
        "nodes": [{k: n[k] for k in NODE_KEYS} for n in report["nodes"]],
        "stats": report["stats"],
    }


def print_summary(report: dict[str, Any], out: TextIO) -> None:
    stats = report["stats"]
    print(
        f"{report['status']} in {stats['duration_s']}s: {stats['node_executions']} node executions, "
        f"{stats['dynamodb_requests']} DynamoDB requests ({stats['dynamodb_write_units']:g} write units, "
        f"{stats['dynamodb_read_units']:g} read units), {stats['events_published']} events",
        file=out,
    )
    if stats.get("llm_calls"):
        print(
            f"LLM: {stats['llm_calls']} calls, {stats['llm_input_tokens']} input + {stats['llm_output_tokens']} "
            f"output tokens, estimated ${stats['llm_cost_usd']:.6f}",
            file=out,
        )
    if report["error"]:
        print(f"error: {report['error']}", file=out)
    print("outputs:", file=out)
    if not report["outputs"]:
        print("  (none)", file=out)
    for name, values in report["outputs"].items():
        rendered = ", ".join(json.dumps(v) for v in values) if values else "(no value)"
        print(f"  {name}: {rendered}", file=out)


if __name__ == "__main__":
    sys.exit(main())
