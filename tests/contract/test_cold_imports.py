"""What each Lambda handler imports when it starts, counted by module, never timed: the slow imports a handler does
not need at start stay out of its cold start (README, "Performance and cost"). httpx (and, through it, rich and
click) is imported by the functions that send a request, the LLM SDKs by the calls that use them, croniter by the
listing of a schedule's fire times, and Powertools' OpenAPI models by the documentation routes (agentflow.api.docs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow_local.template import load_template
from bench.startup import lambda_environment

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
NEVER_AT_START = ("httpx", "httpx2", "openai", "anthropic", "rich", "click", "croniter")
OPENAPI_MODELS = "aws_lambda_powertools.event_handler.openapi.models"

# Imports the handler the way Lambda does (its code folder first on sys.path, module `app`), then lists sys.modules.
_SCRIPT = """
import importlib.util, json, sys
path, code_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, code_dir)
spec = importlib.util.spec_from_file_location("app", path)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_import(function: str) -> set[str]:
    spec = TEMPLATE.functions[function]
    env = lambda_environment(spec, TEMPLATE.parameter_defaults())
    env["PYTHONPATH"] = str(ROOT / "layers" / "engine")  # this checkout's engine, whatever the venv points at
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(spec.handler_path), str(spec.code_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("function", sorted(TEMPLATE.functions))
def test_no_handler_imports_an_http_client_or_an_llm_sdk_at_start(function: str) -> None:
    loaded = modules_after_import(function)
    assert "agentflow" in loaded  # the handler did import the engine
    found = sorted(m for m in loaded if m.split(".", 1)[0] in NEVER_AT_START)
    assert not found, f"{function} imports at start: {found[:10]}"


def test_the_api_imports_powertools_openapi_models_only_for_its_documentation() -> None:
    assert OPENAPI_MODELS not in modules_after_import("ApiFunction")
