"""Run a Lambda handler in-process: import it from its code folder and give it a Lambda-like context.

Several functions all have an `app.py`, so each handler module is imported under a name of its own instead of
`app`. Environment variables are process-wide: the local stack sets them once (every function shares the
template's Globals environment), this module does not touch them.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from agentflow.errors import AgentflowError
from agentflow.runtime import Runtime, runtime_override
from agentflow_local.template import FunctionSpec

__all__ = ["FakeLambdaContext", "Handler", "HandlerLoadError", "invoke", "load_handler"]

Handler = Callable[[dict[str, Any], Any], Any]

LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "us-east-1"


class HandlerLoadError(AgentflowError, ImportError):
    """A function's handler file is missing, fails to import, or lacks the handler function."""


class FakeLambdaContext:
    """The attributes of the Lambda Python runtime's context object that handlers and Powertools read.

    Make one per invocation: `aws_request_id` is fresh each time and the remaining time counts down from the
    function's timeout, starting when the context is made.
    """

    def __init__(
        self,
        function_name: str,
        *,
        timeout: float = 3,
        memory_limit_in_mb: int = 128,
        region: str = LOCAL_REGION,
        account: str = LOCAL_ACCOUNT,
        function_version: str = "$LATEST",
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[{function_version}]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline = time.monotonic() + timeout

    @classmethod
    def for_function(
        cls, spec: FunctionSpec, *, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT
    ) -> FakeLambdaContext:
        return cls(
            spec.logical_id,
            timeout=spec.timeout,
            memory_limit_in_mb=spec.memory,
            region=region,
            account=account,
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"FakeLambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


_import_lock = threading.Lock()
_load_count = 0


def _module_name(spec: FunctionSpec) -> str:
    global _load_count
    _load_count += 1
    safe = re.sub(r"\W", "_", f"{spec.logical_id}_{spec.handler_module}")
    # A counter keeps two loads of one function (two buses in one test run) from sharing a module.
    return f"agentflow_local_fn_{safe}_{_load_count}"


def load_handler(spec: FunctionSpec, runtime: Runtime | None = None) -> Handler:
    """Import `<code_dir>/<module>.py` under a unique module name and return its handler function. With
    `runtime`, the module's `current_runtime()` is that one (the local stack's clients, clock and metrics)."""
    path: Path = spec.handler_path
    if not path.is_file():
        raise HandlerLoadError(f"{spec.logical_id}: handler file {path} does not exist")
    with _import_lock:
        name = _module_name(spec)
        # Lambda puts the code folder first on sys.path, so a handler can import its sibling modules.
        code_dir = str(spec.code_dir)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise HandlerLoadError(f"{spec.logical_id}: cannot import {path}")
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling look a module up by name while it runs
        try:
            with runtime_override(runtime):
                module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise HandlerLoadError(f"{spec.logical_id}: importing {path} failed: {exc!r}") from exc
    handler = getattr(module, spec.handler_function, None)
    if not callable(handler):
        raise HandlerLoadError(f"{spec.logical_id}: {path} has no callable {spec.handler_function!r}")
    return handler  # type: ignore[no-any-return]


def invoke(
    spec: FunctionSpec,
    handler: Handler,
    event: dict[str, Any],
    *,
    region: str = LOCAL_REGION,
    account: str = LOCAL_ACCOUNT,
) -> Any:
    """Call a handler once, as Lambda would: with a fresh context."""
    return handler(event, FakeLambdaContext.for_function(spec, region=region, account=account))
