"""`agentflow validate GRAPH.json...`: check AutoGPT exports (their sub-graphs included) without running them and
without a local stack (README, "Validating exports").

Exit codes: 0 every file is valid; 2 some file is not (or cannot be read), with every problem on stderr, one line
each, naming the file, the sub-graph when it is one, the node and the pin. `--json` prints one document instead:
`{"valid": bool, "files": [{"file", "valid", "problems": [{"graph", "node_id", "pin", "message"}]}]}`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agentflow.exports import ExportProblem, check_export, load_export
from agentflow.graph import GraphValidationError, Problem

EXIT_OK, EXIT_INVALID = 0, 2


def register(commands: Any) -> None:
    validate = commands.add_parser(
        "validate",
        help="check AutoGPT exports (sub-graphs included) without running them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("graphs", nargs="+", type=Path, metavar="GRAPH.json", help="exports to check")
    validate.add_argument("--json", action="store_true", help="print one JSON document with the problems per file")


def problems_of(path: Path) -> list[ExportProblem]:
    try:
        text = path.read_bytes()
    except OSError as exc:
        return [ExportProblem(Problem(f"cannot read the file: {exc.strerror or exc}"))]
    try:
        document = load_export(text)
    except GraphValidationError as exc:
        return [ExportProblem(p) for p in exc.problems]
    return check_export(document)


def validate_command(args: argparse.Namespace) -> int:
    results = [(path, problems_of(path)) for path in args.graphs]
    valid = all(not problems for _, problems in results)
    if args.json:
        files = [
            {"file": str(path), "valid": not problems, "problems": [p.to_dict() for p in problems]}
            for path, problems in results
        ]
        print(json.dumps({"valid": valid, "files": files}, indent=2))
    else:
        for path, problems in results:
            for problem in problems:
                print(f"{path}: {problem}", file=sys.stderr)
            if not problems:
                print(f"{path}: valid")
    return EXIT_OK if valid else EXIT_INVALID
