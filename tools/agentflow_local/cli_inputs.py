"""What the `agentflow` commands share about their command line: the usage error (exit code 2) and the graph inputs
given as `--input NAME=VALUE` and `--inputs JSON`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentflow.errors import InvalidInput

__all__ = ["UsageError", "parse_inputs", "parse_value"]


class UsageError(InvalidInput):
    """The command line or its inputs are malformed (exit code 2)."""


def parse_value(text: str) -> Any:
    """A value given on the command line: JSON when it parses as JSON, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_inputs(pairs: Sequence[str], inputs_json: str | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    problems = []
    if inputs_json is not None:
        try:
            loaded = json.loads(inputs_json)
        except json.JSONDecodeError as exc:
            problems.append(f"--inputs is not valid JSON: {exc}")
        else:
            if isinstance(loaded, dict):
                inputs.update(loaded)
            else:
                problems.append(f"--inputs must be a JSON object, got {type(loaded).__name__}")
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            problems.append(f"--input expects NAME=VALUE, got {pair!r}")
            continue
        inputs[name] = parse_value(value)
    if problems:
        raise UsageError("\n".join(problems))
    return inputs
