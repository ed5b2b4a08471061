"""The house rules for the code's size (docs/architecture.md, "Where each concern lives"): no module over 500
lines, no class over 300, no function over 60, in the engine and the local tools. An exception must say why,
here, in ALLOWED."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "layers/engine/agentflow", ROOT / "tools/agentflow_local"]
LIMITS = {"module": 500, "class": 300, "function": 60}

# (path relative to the repository, kind, name) -> why it may be longer
ALLOWED: dict[tuple[str, str, str], str] = {}


def too_long(path: Path) -> list[tuple[str, str, int]]:
    """(kind, name, lines) of everything in one file that is over its limit."""
    text = path.read_text()
    found: list[tuple[str, str, int]] = []
    lines = len(text.splitlines())
    if lines > LIMITS["module"]:
        found.append(("module", path.stem, lines))
    for node in ast.walk(ast.parse(text)):
        kind = (
            "class"
            if isinstance(node, ast.ClassDef)
            else "function"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            else None
        )
        if kind is None:
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])  # type: ignore[union-attr]
        size = (node.end_lineno or node.lineno) - start + 1  # type: ignore[union-attr]
        if size > LIMITS[kind]:
            found.append((kind, node.name, size))  # type: ignore[union-attr]
    return found


def test_the_checker_finds_what_is_too_long(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert too_long(sample) == [("function", "long", 62)]


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES if package.is_dir() for p in package.rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_class_or_function_is_over_its_limit(path: Path) -> None:
    relative = str(path.relative_to(ROOT))
    over = [(k, n, size) for k, n, size in too_long(path) if (relative, k, n) not in ALLOWED]
    assert not over, f"{relative}: " + ", ".join(f"{k} {n} is {size} lines (limit {LIMITS[k]})" for k, n, size in over)
