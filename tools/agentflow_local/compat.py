"""The compatibility report (README, "Compatibility with AutoGPT"): which exports of a folder validate here, and
which blocks the others still need.

    python -m agentflow_local.compat FOLDER [--markdown]

It validates every `*.json` of FOLDER (sub-graphs included) as `agentflow validate` does, and prints one line per
export, then the missing blocks by the number of exports that need them. `--markdown` prints tables for README.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentflow.exports import ExportProblem
from agentflow_local.cli_validate import problems_of

# Blocks an export may need that agentflow does not have yet, by AutoGPT UUID: names make the report readable.
# None today: every AutoGPT block the exports use is here.
KNOWN_MISSING: dict[str, str] = {}
UNKNOWN_BLOCK = "unknown block '"


@dataclass
class ExportResult:
    name: str
    problems: list[ExportProblem]
    missing: set[str] = field(default_factory=set)  # block ids

    @property
    def valid(self) -> bool:
        return not self.problems


def missing_blocks(problems: Sequence[ExportProblem]) -> set[str]:
    found = set()
    for problem in problems:
        message = problem.problem.message
        if message.startswith(UNKNOWN_BLOCK):
            found.add(message[len(UNKNOWN_BLOCK) :].rstrip("'"))
    return found


def block_label(block_id: str) -> str:
    name = KNOWN_MISSING.get(block_id)
    return f"{name} (`{block_id}`)" if name else f"`{block_id}`"


def report(folder: Path) -> list[ExportResult]:
    results = []
    for path in sorted(folder.glob("*.json")):
        problems = problems_of(path)
        results.append(ExportResult(path.name, problems, missing_blocks(problems)))
    return results


def needed(results: Sequence[ExportResult]) -> Counter[str]:
    return Counter(block for result in results for block in result.missing)


def print_text(results: Sequence[ExportResult]) -> None:
    for result in results:
        if result.valid:
            print(f"{result.name}: valid")
        else:
            missing = ", ".join(sorted(block_label(b) for b in result.missing)) or "no block missing"
            print(f"{result.name}: {len(result.problems)} problem(s); needs {missing}")
    print(f"{sum(r.valid for r in results)} of {len(results)} exports validate")
    for block, count in needed(results).most_common():
        print(f"  {count:3d} export(s) need {block_label(block)}")


def print_markdown(results: Sequence[ExportResult]) -> None:
    print("| export | validates | blocks it still needs |\n|---|---|---|")
    for result in results:
        missing = ", ".join(sorted(block_label(b) for b in result.missing)) or ("—" if result.valid else "(see below)")
        print(f"| {result.name} | {'yes' if result.valid else 'no'} | {missing} |")
    print("\n| block still missing | exports needing it |\n|---|---|")
    for block, count in needed(results).most_common():
        print(f"| {block_label(block)} | {count} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentflow_local.compat", description=__doc__)
    parser.add_argument("folder", type=Path, help="a folder of AutoGPT export files (*.json)")
    parser.add_argument("--markdown", action="store_true", help="print README tables")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    results = report(args.folder)
    if args.json:
        document = [{"export": r.name, "valid": r.valid, "missing_blocks": sorted(r.missing)} for r in results]
        print(json.dumps(document, indent=2))
    elif args.markdown:
        print_markdown(results)
    else:
        print_text(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
