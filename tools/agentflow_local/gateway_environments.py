"""Execution environments for the local API Gateway: warm and cold copies of one function's handler.

Lambda runs one request per execution environment at a time, and Powertools resolvers keep the current event on
the module-level `app` object. So each function gets a pool of separately imported handler modules, up to a
limit, and each one serves one request at a time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from agentflow.runtime import Runtime
from agentflow_local.lambda_runtime import Handler, load_handler
from agentflow_local.template import FunctionSpec


class _Environments:
    """The warm execution environments of one function: separately imported handlers, one request each at a time."""

    def __init__(self, spec: FunctionSpec, shared: Handler | None, limit: int, runtime: Runtime | None) -> None:
        self.spec = spec
        self._runtime = runtime
        self._shared = shared
        self._limit = limit
        self._idle: list[Handler] = []
        self._count = 0
        self._cond = threading.Condition()

    def warm(self) -> None:
        """Load one environment now, so a missing or broken handler fails at start rather than on a request."""
        if self._shared is not None:
            return
        with self._cond:
            if self._count:
                return
            self._count += 1
        try:
            handler = load_handler(self.spec, self._runtime)
        except BaseException:
            with self._cond:
                self._count -= 1
            raise
        with self._cond:
            self._idle.append(handler)
            self._cond.notify()

    @property
    def size(self) -> int:
        with self._cond:
            return self._count

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Handler]:
        if self._shared is not None:
            yield self._shared
            return
        with self._cond:
            # At the limit, wait for a free environment rather than throttle: friendlier on a laptop.
            self._cond.wait_for(lambda: bool(self._idle) or self._count < self._limit)
            handler = self._idle.pop() if self._idle else None  # the most recently used: the warmest
            if handler is None:
                self._count += 1
        if handler is None:
            try:
                handler = load_handler(self.spec, self._runtime)  # a cold start
            except BaseException:
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
                raise
        try:
            yield handler
        finally:
            with self._cond:
                self._idle.append(handler)
                self._cond.notify()
