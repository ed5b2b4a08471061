"""The engine layer imports only what it declares: `sam build` installs layers/engine/requirements.txt into the
layer, so a module the layer imports from any other distribution would be missing in Lambda (as `yaml` once was,
when the local stack's template reader still lived in the layer).

Imports are read from the source with `ast`, wherever they are (inside functions too), except under
`if TYPE_CHECKING:`: those never run (that is where the `mypy_boto3_*` stubs are imported). The standard library
and the layer's own package are not distributions to declare; `boto3` and `botocore` are provided by the Lambda
Python runtime. Each other top-level module is mapped to the distribution that installs it
(`importlib.metadata.packages_distributions()`), which requirements.txt must name (compared per PEP 503).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER_PACKAGE = "agentflow"
LAYER_DIR = ROOT / "layers" / "engine" / LAYER_PACKAGE
REQUIREMENTS = ROOT / "layers" / "engine" / "requirements.txt"
LOCAL_TOOLS = "agentflow_local"  # the local stack and the CLI (tools/): never in the layer
RUNTIME_PROVIDED = frozenset({"boto3", "botocore"})  # in the Lambda Python runtime, not in the layer


@dataclass(frozen=True)
class Import:
    module: str  # the top-level module name, e.g. "yaml" for `from yaml.loader import SafeLoader`
    path: Path
    line: int


def normalize(name: str) -> str:
    """A distribution name per PEP 503: `PyYAML`, `pyyaml` and `py.yaml` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalized distribution name of a requirement such as `PyYAML[libyaml]>=6 ; python_version >= '3.13'`."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, f"cannot read the requirement {requirement!r}"
    return normalize(match.group(0))


def requirement_names(requirements: Path) -> set[str]:
    """The normalized distribution names a requirements file asks for (options and comments skipped)."""
    names = set()
    for line in requirements.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            names.add(requirement_name(text))
    return names


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, path: Path, skip_type_checking: bool) -> None:
        self.path = path
        self.skip_type_checking = skip_type_checking
        self.found: list[Import] = []

    def visit_If(self, node: ast.If) -> None:
        if self.skip_type_checking and _is_type_checking(node.test):
            for child in node.orelse:  # the else branch does run
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append(Import(alias.name.partition(".")[0], self.path, node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:  # a relative import stays inside the package
            self.found.append(Import(node.module.partition(".")[0], self.path, node.lineno))


def imports_in(package_dir: Path, *, skip_type_checking: bool = True) -> Iterator[Import]:
    """Every absolute import in every module of a package, in file order."""
    for path in sorted(package_dir.rglob("*.py")):
        collector = _Collector(path, skip_type_checking)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        yield from collector.found


def undeclared_imports(
    package_dir: Path,
    requirements: Path,
    *,
    distributions: Mapping[str, Sequence[str]] | None = None,
    provided: frozenset[str] = RUNTIME_PROVIDED,
) -> list[str]:
    """One line per import whose distribution `requirements` does not name, saying which module and which
    requirement; empty when every import is declared."""
    accepted = requirement_names(requirements) | {normalize(name) for name in provided}
    distributions = packages_distributions() if distributions is None else distributions
    own = package_dir.name
    problems = []
    for found in imports_in(package_dir):
        if found.module in sys.stdlib_module_names or found.module == own:
            continue
        where = f"{found.path.relative_to(package_dir.parent)}:{found.line}"
        names = list(dict.fromkeys(distributions.get(found.module, ())))
        if not names:
            problems.append(
                f"{where} imports {found.module}, which no installed distribution provides: "
                f"install it and add it to {requirements.name}"
            )
        elif not any(normalize(name) in accepted for name in names):
            problems.append(
                f"{where} imports {found.module}: add {' or '.join(names)} to {requirements.name} "
                f"({requirements}), which does not name it"
            )
    return problems


# --- the layer ------------------------------------------------------------------------------------------------


def test_every_import_the_layer_makes_is_in_its_requirements() -> None:
    modules = {found.module for found in imports_in(LAYER_DIR)}
    # Really read: third-party imports the layer is known to make.
    assert {"pydantic", "aws_lambda_powertools", "jinja2", "croniter", "boto3"} <= modules, modules
    # The stubs are imported only for the type checker, never at run time.
    assert not {m for m in modules if m.startswith("mypy_boto3")}
    assert {m for m in (f.module for f in imports_in(LAYER_DIR, skip_type_checking=False)) if "mypy_boto3" in m}
    problems = undeclared_imports(LAYER_DIR, REQUIREMENTS)
    assert not problems, "the layer imports distributions it does not declare:\n" + "\n".join(problems)


def test_the_layer_never_imports_the_local_tools() -> None:
    # Under TYPE_CHECKING too: the layer must type-check without them.
    offenders = [
        f"{found.path.relative_to(LAYER_DIR.parent)}:{found.line}"
        for found in imports_in(LAYER_DIR, skip_type_checking=False)
        if found.module == LOCAL_TOOLS
    ]
    assert not offenders, f"the layer imports {LOCAL_TOOLS} (the local tools, not in the layer): {offenders}"
    assert not (LAYER_DIR / "local").exists()
    assert not (LAYER_DIR / "cli.py").exists()


def test_the_project_declares_what_the_layer_declares() -> None:
    """pyproject.toml's dependencies repeat requirements.txt, so the venv the tests run in has the layer's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {requirement_name(dependency) for dependency in project["dependencies"]}
    assert requirement_names(REQUIREMENTS) <= declared
    assert {"boto3", "pyyaml"} <= declared  # the runtime's, and the local tools' (template.yaml reader)


# --- the checker itself ---------------------------------------------------------------------------------------


def _package(tmp_path: Path, files: Mapping[str, str], requirements: str) -> tuple[Path, Path]:
    package = tmp_path / "pkg"
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text, encoding="utf-8")
    requirements_file = tmp_path / "requirements.txt"
    requirements_file.write_text(requirements, encoding="utf-8")
    return package, requirements_file


FILES = {
    "__init__.py": "import json\nfrom . import loader\n",
    "loader.py": (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import boto3\n"
        "from pkg.other import x\n"
        "if TYPE_CHECKING:\n"
        "    from mypy_boto3_dynamodb import DynamoDBClient\n"
        "\n"
        "def read(text):\n"
        "    import yaml\n"
        "    return yaml.safe_load(text)\n"
    ),
    "sub/other.py": "from pydantic import BaseModel\nx = 1\n",
}


def test_the_checker_names_the_module_and_the_missing_requirement(tmp_path: Path) -> None:
    package, requirements = _package(tmp_path, FILES, "pydantic>=2  # the models\n-r other.txt\n\n")
    problems = undeclared_imports(package, requirements)
    # Only yaml: json is stdlib, pkg is the package, boto3 is the runtime's, the stubs are TYPE_CHECKING only.
    assert len(problems) == 1, problems
    assert problems[0].startswith("pkg/loader.py:9 imports yaml: add PyYAML to requirements.txt"), problems


def test_the_checker_accepts_a_requirement_spelled_another_way(tmp_path: Path) -> None:
    package, requirements = _package(tmp_path, FILES, "Pydantic>=2\npy_yaml>=6 ; python_version >= '3.13'\n")
    distributions = {**packages_distributions(), "yaml": ["Py.YAML"]}  # PEP 503: Py.YAML == py_yaml == py-yaml
    assert undeclared_imports(package, requirements, distributions=distributions) == []
    requirements.write_text("pydantic\nPyYAML\n", encoding="utf-8")
    assert undeclared_imports(package, requirements) == []


def test_the_checker_reports_a_module_no_distribution_provides(tmp_path: Path) -> None:
    files = {"__init__.py": "if TYPE_CHECKING:\n    pass\nelse:\n    import surely_not_installed_anywhere\n"}
    package, requirements = _package(tmp_path, files, "")
    (problem,) = undeclared_imports(package, requirements)
    assert "pkg/__init__.py:4 imports surely_not_installed_anywhere, which no installed distribution" in problem
