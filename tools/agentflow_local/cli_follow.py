"""Following a run over the HTTP API to its end, through the live view: `agentflow execute --wait`,
`agentflow runs watch`, and `agentflow run` on a running `agentflow serve` (README, "The terminal client")."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from agentflow_local.client import Client, ClientError
from agentflow_local.live_view import Clock, View

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_REVIEW = 0, 1, 2, 3
ENDS = {"COMPLETED": EXIT_OK, "FAILED": EXIT_FAILED, "TERMINATED": EXIT_FAILED, "REVIEW": EXIT_REVIEW}
FIRST_POLL, POLL_SECONDS = 0.05, 0.25  # a short run is seen ending soon; a long one is not read more than 4x/s
SETTLE_READS, QUIET_READS = 60, 5  # the final costs: unchanged for 5 reads (0.25 s), waited for at most 3 s


def label_of(report: Any) -> str:
    return f"graph {report.get('graph_id')} v{report.get('graph_version')}"


def follow(
    client: Client,
    execution_id: str,
    view: View,
    timeout: float,
    *,
    label: str | None = None,
    owns_run: bool = False,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Poll `GET /executions/{eid}` until the run ends or waits for a review, feeding `view`; returns the last answer.

    Past `timeout`, or on Ctrl-C: when the caller `owns_run` (`agentflow run`) it is stopped and followed to
    its end, as on the local stack; otherwise (only watching) a timeout is an error (exit 1) and Ctrl-C stops
    watching, and the run goes on."""
    report = client.execution(execution_id)
    view.start(execution_id, label or label_of(report))
    deadline = clock() + timeout
    delay = FIRST_POLL
    try:
        while report["status"] not in ENDS:
            try:
                view.show(report)
                if clock() > deadline:
                    if not owns_run:
                        raise ClientError(
                            f"execution {execution_id} is still {report['status']} after {timeout:g}s "
                            f"(it goes on; see `agentflow runs show {execution_id}`)"
                        )
                    print(f"error: the run took longer than --timeout {timeout:.0f}s; stopping it", file=sys.stderr)
                    _stop(client, execution_id)
                    deadline = float("inf")
                sleep(delay)
                delay = min(delay * 2, POLL_SECONDS)
                report = client.execution(execution_id)
            except KeyboardInterrupt:
                if not owns_run:
                    raise
                print("\nagentflow: stopping the run", file=sys.stderr)
                _stop(client, execution_id)
                deadline = float("inf")
        report = _settled(client, execution_id, report, sleep)
    finally:
        view.close(report)
    return report


def _settled(client: Client, execution_id: str, report: Any, sleep: Callable[[float], None]) -> Any:
    """The run's answer once its stats stopped moving for QUIET_READS reads: the invocation that ends a run still
    stamps its items' retention and adds its costs after the status it wrote (docs/architecture.md, "One
    execution, from trigger to finalize"), so the first final answer may miss them."""
    quiet = 0
    for _ in range(SETTLE_READS):
        if quiet >= QUIET_READS:
            break
        sleep(FIRST_POLL)
        again = client.execution(execution_id)
        quiet = quiet + 1 if again.get("stats") == report.get("stats") else 0
        report = again
    return report


def _stop(client: Client, execution_id: str) -> None:
    try:
        client.control(execution_id, "stop")
    except ClientError as exc:
        if exc.status != 409:  # 409: it ended meanwhile, nothing to stop
            raise
