"""Command line: run the scenarios, the cold-start measurements, print the report, write the JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import bench
from agentflow_local.dynamodb import DynamoDBLocal, DynamoDBLocalError, find_jar, project_root
from bench import graphs, startup
from bench.costs import cost_of
from bench.probes import Probe
from bench.report import BenchReport, print_report
from bench.scenarios import ScenarioResult, run_scenario


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: chain of 20, fan-out of 50, diamond")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--concurrency", type=int, default=8, help="local bus workers (default 8)")
    parser.add_argument(
        "--timeout", type=float, default=900.0, metavar="SECONDS", help="per scenario, then it is stopped (900)"
    )
    parser.add_argument("--only", action="append", metavar="SCENARIO", help="run only this scenario (repeatable)")
    parser.add_argument("--no-startup", action="store_true", help="skip the import-time and layer-size measurements")
    return parser


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = project_root()
    available = graphs.scenarios(args.quick)
    scenarios = [s for s in available if not args.only or s.name in args.only]
    if not scenarios:
        names = ", ".join(s.name for s in available)
        print(f"error: no scenario named {', '.join(args.only)} (this mode has: {names})", file=sys.stderr)
        return 2

    probe = Probe()
    probe.install()  # before the stacks create their boto3 clients: clients copy the session's hooks
    results: list[ScenarioResult] = []
    try:
        jar = find_jar(root)
        _log("starting DynamoDB Local (in memory)")
        with DynamoDBLocal(root, data_dir=None) as dynamodb:
            for scenario in scenarios:
                _log(f"running {scenario.name}: {scenario.description}")
                result = run_scenario(
                    scenario,
                    root=root,
                    endpoint=dynamodb.endpoint,
                    probe=probe,
                    concurrency=args.concurrency,
                    timeout=args.timeout,
                    latency_samples=20 if args.quick else 100,
                )
                _log(f"  {result.status}: {result.node_executions} node executions in {result.wall_seconds:.1f}s")
                results.append(result)
    except DynamoDBLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    imports: list[startup.ImportTime] = []
    layer = None
    if not args.no_startup:
        _log("measuring handler import times and the layer")
        contents = startup.layer_contents(root)
        layer = startup.layer_size(contents)
        with tempfile.TemporaryDirectory(prefix="bench-layer-") as unpacked:
            importable = startup.layer_contents(root, importable=True)
            imports = startup.import_times(
                root, 1 if args.quick else 5, startup.unpack_layer(importable, Path(unpacked))
            )

    ok = all(r.status == "COMPLETED" and r.outputs_ok and not r.notes for r in results)
    report = BenchReport(
        mode="quick" if args.quick else "full",
        environment={
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "dynamodb_local": jar.parent.name.removeprefix("dynamodb_local_"),
            "concurrency": args.concurrency,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        scenarios=results,
        costs=[cost_of(r) for r in results],
        imports=imports,
        layer=layer,
        ok=ok,
    )
    print_report(report, sys.stdout)
    if not args.only:  # `agentflow run`'s wall time without and with a running serve (bench/cli_wall.py)
        from bench import cli_wall

        cli_wall.report(root, sys.stdout, runs=1 if args.quick else 3)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        _log(f"wrote {args.json}")
    return 0 if ok else 1
