"""Cold start ingredients: how long each handler module takes to import in a fresh interpreter, and the size of
the engine layer Lambda has to load."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from agentflow_local.template import FunctionSpec, TemplateError, load_template, resolve_environment

# Imports the handler the way Lambda does (code folder first on sys.path, module `app`) and times only the import.
_IMPORT_SCRIPT = """
import importlib.util, json, sys, time
path, code_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, code_dir)
sys.stderr.write("bench: import starts\\n")
sys.stderr.flush()
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", path)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - t0
print(json.dumps({"import_s": elapsed, "agentflow": sys.modules["agentflow"].__file__}))
"""
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)$")


@dataclass(frozen=True)
class ImportTime:
    function: str  # logical id in template.yaml
    handler: str  # path relative to the project
    runs: int
    import_ms: float  # median, every module's bytecode cached (.pyc)
    lambda_import_ms: float  # median, the layer's modules without .pyc, as Lambda loads them from /opt
    process_ms: float  # median wall time of the whole fresh process in the Lambda-like case
    heaviest: list[tuple[str, float]]  # import ms by top-level package (python -X importtime), Lambda-like
    error: str | None = None


@dataclass(frozen=True)
class LayerSize:
    source: str
    files: int
    bytes: int
    zipped_bytes: int
    parts: list[tuple[str, int]]  # (distribution or package, bytes), largest first
    notes: list[str] = field(default_factory=list)


class _DummyRefs(dict[str, str]):
    """Any resource reference resolves to a made-up name: importing a handler only needs the variables set."""

    def __missing__(self, name: str) -> str:
        return f"bench-{name.replace('::', '-').replace('.', '-').lower()}"


_PSEUDO = {
    "AWS::StackName": "bench",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "000000000000",
    "AWS::Partition": "aws",
}


def lambda_environment(spec: FunctionSpec, parameters: dict[str, str]) -> dict[str, str]:
    """What the function's environment holds in Lambda (its template variables, with made-up resource names) and
    dummy credentials; nothing of this process's AWS or Python settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    refs = _DummyRefs({**parameters, **_PSEUDO})  # a template parameter means its default
    for name, value in spec.environment.items():
        try:
            env.update(resolve_environment({name: value}, refs))
        except TemplateError:  # an intrinsic the local resolver does not know: any text will do
            env[name] = refs[name]
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def _run_import(handler: Path, code_dir: Path, env: dict[str, str], *flags: str) -> tuple[float, float, str, str]:
    """(import seconds, process seconds, agentflow's file, stderr) of one fresh interpreter importing the handler."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", _IMPORT_SCRIPT, str(handler), str(code_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    process = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["import_s"]), process, str(answer["agentflow"]), done.stderr


def _heaviest(importtime_log: str, import_s: float, top: int = 6) -> list[tuple[str, float]]:
    """Where the handler's import time goes: each module's own time summed by top-level package (the standard
    library as one entry), and what no import accounts for (module-level code, e.g. creating boto3 clients)."""
    found: dict[str, float] = {}
    _, _, after = importtime_log.partition("bench: import starts\n")
    for line in after.splitlines():
        match = _IMPORTTIME.match(line)
        if not match:
            continue
        root = match.group(3).split(".", 1)[0]
        name = "(stdlib)" if root in sys.stdlib_module_names or root.startswith("_") else root
        found[name] = found.get(name, 0.0) + int(match.group(1)) / 1000
    found["(module code)"] = max(0.0, import_s * 1000 - sum(found.values()))
    return sorted(found.items(), key=lambda kv: -kv[1])[:top]


def import_times(root: Path, runs: int, layer_python: Path) -> list[ImportTime]:
    """`layer_python`: a folder holding the layer's python/ contents without .pyc (see `unpack_layer`)."""
    results = []
    template = load_template(root / "template.yaml")
    for spec in template.functions.values():
        handler, code_dir = spec.handler_path, spec.code_dir
        relative = str(handler.relative_to(root)) if handler.is_relative_to(root) else str(handler)
        cached_env = lambda_environment(spec, template.parameter_defaults())
        # The layer first on sys.path and no .pyc written: the layer's modules compile on every import, while the
        # interpreter's own (and boto3, which the Lambda runtime provides) stay cached, as in the runtime image.
        lambda_env = {**cached_env, "PYTHONPATH": str(layer_python), "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            _run_import(handler, code_dir, cached_env)  # fills the bytecode cache
            cached, cold = [], []
            for _ in range(runs):  # interleaved, so a burst of load on a shared machine hits both alike
                cached.append(_run_import(handler, code_dir, cached_env))
                cold.append(_run_import(handler, code_dir, lambda_env))
            profiled, _, loaded_from, log = _run_import(handler, code_dir, lambda_env, "-X", "importtime")
            if not Path(loaded_from).is_relative_to(layer_python):
                raise RuntimeError(f"agentflow was imported from {loaded_from}, not from the unpacked layer")
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            results.append(ImportTime(spec.logical_id, relative, 0, 0.0, 0.0, 0.0, [], error=str(exc)))
            continue
        results.append(
            ImportTime(
                function=spec.logical_id,
                handler=relative,
                runs=runs,
                import_ms=statistics.median(r[0] for r in cached) * 1000,
                lambda_import_ms=statistics.median(r[0] for r in cold) * 1000,
                process_ms=statistics.median(r[1] for r in cold) * 1000,
                heaviest=_heaviest(log, profiled),
            )
        )
    return results


# -- the layer


def _requirement_names(lines: list[str]) -> list[str]:
    names = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        if ";" in text and "extra" in text.split(";", 1)[1]:
            continue  # an optional extra pip would not install
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
        if match:
            names.append(match.group(0))
    return names


def _closure(names: list[str]) -> list[metadata.Distribution]:
    """The distributions pip would install for these requirements, from what this venv has installed."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        todo.extend(_requirement_names(dist.requires or []))
    return list(seen.values())


def _files_of(dist: metadata.Distribution) -> list[tuple[Path, str]]:
    """(file, its path inside the layer's python/ folder) for a distribution, without bytecode caches."""
    out = []
    for entry in dist.files or []:
        relative = str(entry)
        if relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc"):
            continue  # scripts land outside site-packages; Lambda layers built by sam carry no .pyc
        path = Path(str(dist.locate_file(entry)))
        if path.is_file():
            out.append((path, relative))
    return out


def _package_files(package: Path) -> list[tuple[Path, str]]:
    return [
        (path, str(path.relative_to(package.parent)))
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def _zipped_size(files: list[tuple[Path, str]]) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-layer-") as tmp:
        target = Path(tmp) / "layer.zip"
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path, name in files:
                archive.write(path, "python/" + name)
        return target.stat().st_size


@dataclass(frozen=True)
class LayerContents:
    source: str
    files: list[tuple[Path, str]]  # (file, its path inside the layer's python/ folder)
    parts: list[tuple[str, int]]
    notes: list[str]


def layer_contents(root: Path, importable: bool = False) -> LayerContents:
    """The engine layer's files: the sam build output if there is one, else rebuilt from this venv. `importable`:
    files this machine can import, so the venv's unless the machine is arm64 like the build (sam builds arm64
    wheels: pydantic-core's compiled part would not load on x86_64)."""
    built = root / ".aws-sam" / "build" / "EngineLayer" / "python"
    if built.is_dir() and not (importable and os.uname().machine not in ("aarch64", "arm64")):
        files = [(p, str(p.relative_to(built))) for p in sorted(built.rglob("*")) if p.is_file()]
        tops: dict[str, int] = {}
        for path, name in files:
            top = Path(name).parts[0]
            tops[top] = tops.get(top, 0) + path.stat().st_size
        return LayerContents(
            source=str(built.parent.relative_to(root)),
            files=files,
            parts=sorted(tops.items(), key=lambda kv: -kv[1]),
            notes=["measured from the output of `make build` (sam build): what `sam deploy` uploads"],
        )
    # No build: the package plus what pip would install for requirements.txt, taken from this venv.
    requirements = (root / "layers" / "engine" / "requirements.txt").read_text().splitlines()
    files = _package_files(root / "layers" / "engine" / "agentflow")
    parts = [("agentflow", sum(p.stat().st_size for p, _ in files))]
    for dist in _closure(_requirement_names(requirements)):
        dist_files = _files_of(dist)
        files += dist_files
        parts.append((f"{dist.metadata['Name']} {dist.version}", sum(p.stat().st_size for p, _ in dist_files)))
    return LayerContents(
        source="layers/engine/agentflow + the requirements.txt closure, from .venv",
        files=files,
        parts=sorted(parts, key=lambda kv: -kv[1]),
        notes=[
            "no .aws-sam/build/EngineLayer (`make build` makes one, measured instead when present); the "
            f"dependencies are this venv's wheels ({sys.platform}/{os.uname().machine}), not the arm64 ones sam "
            "builds: sizes of compiled parts (pydantic-core) differ somewhat",
        ],
    )


def layer_size(contents: LayerContents) -> LayerSize:
    return LayerSize(
        source=contents.source,
        files=len(contents.files),
        bytes=sum(p.stat().st_size for p, _ in contents.files),
        zipped_bytes=_zipped_size(contents.files),
        parts=contents.parts,
        notes=[
            *contents.notes,
            "no .pyc in the layer (sam unpacks wheels, /opt is read-only): Lambda compiles its modules at each "
            "cold start",
        ],
    )


def unpack_layer(contents: LayerContents, target: Path) -> Path:
    """Copy the layer's files to `target`/python, as Lambda unpacks a layer to /opt/python; returns that folder."""
    python = target / "python"
    for path, name in contents.files:
        destination = python / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    return python
