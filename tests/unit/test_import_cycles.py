"""No import cycles inside the engine package (`agentflow`, the Lambda layer) nor inside the local tools
(`agentflow_local`, the local stack and the CLI): every module can be imported first, in any order.

The graph is read from the source with `ast`, so imports inside functions (and under `if TYPE_CHECKING:`) count
too: a cycle hidden in a function still ties the two modules together. `from agentflow.x import name` is an edge
to the module `agentflow.x.name` when there is one, else to `agentflow.x`. Each package is checked on its own; the
engine never imports the local tools (tests/contract/test_layer_dependencies.py), so no cycle can run through both.
"""

from __future__ import annotations

import ast
import shutil
from collections import deque
from collections.abc import Mapping, Set
from pathlib import Path

import pytest

import agentflow
import agentflow_local

# Each root: (package name, its folder).
PACKAGES = {
    "agentflow": Path(agentflow.__file__).resolve().parent,
    "agentflow_local": Path(agentflow_local.__file__).resolve().parent,
}
# Per root, two imports it is known to have (proof its graph is really read), and a cycle to plant in a copy of it:
# (module file to append to, the import hidden in a function there, two modules the cycle must then contain).
KNOWN_EDGES = {
    "agentflow": [("agentflow.graph", "agentflow.errors"), ("agentflow.runtime", "agentflow.config")],
    "agentflow_local": [
        ("agentflow_local.bus", "agentflow_local.template"),
        ("agentflow_local.template", "agentflow_local.event_patterns"),
    ],
}
PLANTED_CYCLES = {
    # errors.py importing graph.py, which imports errors.py
    "agentflow": ("errors.py", "from agentflow.graph import validate_graph", {"agentflow.errors", "agentflow.graph"}),
    # the cycle the bus and the template reader used to have
    "agentflow_local": (
        "template.py",
        "from agentflow_local.bus import event_matches",
        {"agentflow_local.bus", "agentflow_local.template"},
    ),
}


def module_files(package_dir: Path, package: str) -> dict[str, Path]:
    """Module name -> its file, for every module of a package (a package's own module is its __init__.py)."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _known(name: str, modules: Set[str]) -> str | None:
    """The module itself when known, else its nearest known parent package (None outside the package)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _from_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from ... import` reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(source: str, module: str, is_package: bool, modules: Set[str]) -> set[str]:
    """The package's modules that a module's source imports, wherever the import statement is."""
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_known(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, module, is_package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else _known(base, modules))
    return {name for name in found if name is not None and name != module}


def import_graph(package_dir: Path, package: str) -> dict[str, set[str]]:
    files = module_files(package_dir, package)
    return {
        module: imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py", files.keys())
        for module, path in files.items()
    }


def strongly_connected(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_through(start: str, members: Set[str], graph: Mapping[str, Set[str]]) -> list[str]:
    """A shortest cycle from `start` back to itself inside one component, as a path of module names."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph.get(node, ())):
            if target not in members:
                continue
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise AssertionError(f"{start} is on no cycle")  # pragma: no cover - only called on a real component


def find_cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """One cycle (a path that ends where it starts) for every strongly connected component of size > 1."""
    return [
        _cycle_through(component[0], set(component), graph)
        for component in strongly_connected(graph)
        if len(component) > 1
    ]


def describe(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in cycles)


# --- the engine and the local tools ---------------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_package_has_no_import_cycles(package: str) -> None:
    graph = import_graph(PACKAGES[package], package)
    # The graph is really read: two imports the package is known to have.
    for source, target in KNOWN_EDGES[package]:
        assert target in graph[source], (source, target)
    # Each root stays in its own package: the other one is not in its graph.
    assert all(module == package or module.startswith(package + ".") for module in graph)
    cycles = find_cycles(graph)
    assert not cycles, f"import cycles in {package} (imports inside functions count):\n" + describe(cycles)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_cycle_added_to_a_copy_of_the_package_is_found(package: str, tmp_path: Path) -> None:
    copy = tmp_path / package
    shutil.copytree(PACKAGES[package], copy, ignore=shutil.ignore_patterns("__pycache__"))
    file_name, statement, expected = PLANTED_CYCLES[package]
    target = copy / file_name
    # The cycle hidden in a function, where nothing runs it at import.
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n\ndef _planted():\n    {statement}\n",
        encoding="utf-8",
    )
    cycles = find_cycles(import_graph(copy, package))
    assert any(expected <= set(cycle) for cycle in cycles), cycles


# --- the checker itself ---------------------------------------------------------------------------------------


def test_the_cycle_finder_names_each_cycle_and_nothing_else() -> None:
    graph = {
        "a": {"b"},
        "b": {"c", "x"},
        "c": {"a"},  # a -> b -> c -> a
        "d": {"a", "e"},  # leads into the cycle, is not on it
        "e": {"d"},  # d <-> e
        "x": set(),
        "y": {"y"},  # a self-import is no cycle between modules
    }
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "e", "d"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_relative_and_nested_imports_make_edges(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from . import b\nimport os\n",
        "b.py": "def later():\n    from pkg.c import value\n    return value\n",
        "c.py": "value = 1\n\nclass K:\n    def m(self):\n        from .sub import d\n",
        "sub/__init__.py": "from .. import a\n",
        "sub/d.py": "import pkg.sub\nfrom ..a import name\n",
    }
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    graph = import_graph(package, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg.sub.d"},
        "pkg.sub": {"pkg.a"},
        "pkg.sub.d": {"pkg.sub", "pkg.a"},
    }
    assert describe(find_cycles(graph)) == "pkg.a -> pkg.b -> pkg.c -> pkg.sub.d -> pkg.a"
