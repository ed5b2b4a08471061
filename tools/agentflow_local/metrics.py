"""CloudWatch EMF metrics on the local stack: the real Powertools provider, written as JSON lines to a file
(`.local/metrics.jsonl`) instead of stdout, where they would break `agentflow run --json` and flood terminals.

Lambda runs one invocation per sandbox; the local stack runs several at once in threads of one process. So the
provider's metric state is per thread: each invocation adds and flushes its own metrics, as it would in Lambda.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.exceptions import SchemaValidationError
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.constants import MAX_METRICS

from agentflow.runtime import MetricsFactory

_PER_THREAD = ("metric_set", "dimension_set", "metadata_set", "timestamp", "dimension_sets")
_write_lock = threading.Lock()


class FileEMFProvider(AmazonCloudWatchEMFProvider):
    """Powertools' EMF provider with per-thread state, flushing each document as one line of `path` (None: the
    documents are dropped, for stacks that keep nothing, such as tests' in-memory ones)."""

    def __init__(self, path: Path | None, **kwargs: Any) -> None:
        object.__setattr__(self, "_state", threading.local())
        self.path = path
        super().__init__(**kwargs)

    def __getattribute__(self, name: str) -> Any:
        if name in _PER_THREAD:
            state = object.__getattribute__(self, "_state")
            if not hasattr(state, name):
                defaults = object.__getattribute__(self, "default_dimensions")
                fresh: dict[str, Any] = {
                    "metric_set": {},
                    "dimension_set": {k: str(v) for k, v in defaults.items()},
                    "metadata_set": {},
                    "timestamp": None,
                    "dimension_sets": [],
                }
                setattr(state, name, fresh[name])
            return getattr(state, name)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PER_THREAD:
            setattr(object.__getattribute__(self, "_state"), name, value)
        else:
            object.__setattr__(self, name, value)

    def add_metric(self, *args: Any, **kwargs: Any) -> None:
        # Powertools prints a full metric set (100 values) itself: write it to the file first instead.
        if len(self.metric_set) >= MAX_METRICS - 1 or any(
            len(m.get("Value", [])) >= MAX_METRICS - 1 for m in self.metric_set.values()
        ):
            self._write(self.serialize_metric_set())
            self.metric_set.clear()
        super().add_metric(*args, **kwargs)

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if not self.metric_set:
            if raise_on_empty_metrics:
                raise SchemaValidationError("Must contain at least one metric.")
            return  # nothing to say: no warning on the user's terminal
        self._write(self.serialize_metric_set())
        self.clear_metrics()

    def _write(self, document: Any) -> None:
        if self.path is None:
            return
        line = json.dumps(document, separators=(",", ":")) + "\n"
        with _write_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)


def file_metrics(path: Path | None) -> MetricsFactory:
    """A metrics factory for the runtime: Powertools `Metrics` whose EMF documents go to `path`."""

    def factory(namespace: str, service: str) -> Metrics:
        return Metrics(provider=FileEMFProvider(path, namespace=namespace, service=service))

    return factory
