"""The live view of a run (README, "The terminal client"): `agentflow run`, `agentflow execute --wait` and
`agentflow runs watch` show a run through it, whatever feeds them its reports (the local store, or the HTTP API).

On a terminal it is one in-place display (rich's Live): node executions by status, a progress bar (finished out of
queued so far), the nodes running now, the elapsed time and the run's cost so far. Anywhere else (a pipe, CI) it is
a few plain lines: one at the start, at most one every AGENTFLOW_PROGRESS_INTERVAL seconds (default 5), one at the
end, whatever the number of status changes. Time comes from an injected clock, so tests drive the throttle.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from agentflow_local.cli_inputs import UsageError

INTERVAL_ENV = "AGENTFLOW_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 5.0  # seconds between two plain progress lines
REFRESH_SECONDS = 0.2  # the terminal display's frame interval: fast enough to look live, cheap to feed
RUNNING_SHOWN = 5  # node executions named on the "running now" line; the rest are counted
FINISHED = ("COMPLETED", "FAILED", "TERMINATED")
ORDER = ("INCOMPLETE", "QUEUED", "RUNNING", "WAITING", "COMPLETED", "FAILED", "TERMINATED")
STYLES = {"COMPLETED": "green", "FAILED": "red", "TERMINATED": "yellow", "REVIEW": "magenta", "RUNNING": "cyan"}

Clock = Callable[[], float]


def progress_interval(environ: Mapping[str, str] | None = None) -> float:
    """AGENTFLOW_PROGRESS_INTERVAL: seconds between plain progress lines (default 5, more than 0)."""
    raw = (os.environ if environ is None else environ).get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{INTERVAL_ENV} must be a number of seconds more than 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class Snapshot:
    """What the view shows of one report (`GET /executions/{eid}`'s shape, which the local store's report has)."""

    status: str
    counts: dict[str, int]  # node executions by status
    running: tuple[str, ...]  # "node#seq BlockName" of the node executions running now
    finished: int
    queued: int  # node executions queued so far (finished ones included)
    stats: Mapping[str, Any]

    @staticmethod
    def of(report: Mapping[str, Any]) -> Snapshot:
        nodes = report.get("nodes") or []
        counts = Counter(str(n.get("status")) for n in nodes)
        stats = report.get("stats") or {}
        started = sum(v for k, v in counts.items() if k != "INCOMPLETE")  # an INCOMPLETE slot waits for inputs
        running = tuple(
            f"{n.get('node_id')}#{n.get('seq', 0)} {n.get('block_name') or '?'}"
            for n in nodes
            if n.get("status") == "RUNNING"
        )
        return Snapshot(
            status=str(report.get("status")),
            counts=dict(counts),
            running=running,
            finished=sum(counts[s] for s in FINISHED),
            queued=max(int(stats.get("node_executions") or 0), started),
            stats=stats,
        )

    def cost(self) -> str:
        """The run's cost so far, as its stats carry it."""
        s = self.stats
        parts = [
            f"{s.get('dynamodb_requests', 0)} DynamoDB requests ({float(s.get('dynamodb_write_units', 0)):g} write, "
            f"{float(s.get('dynamodb_read_units', 0)):g} read units)",
            f"{s.get('events_published', 0)} events",
        ]
        if "lambda_invocations" in s:
            parts.append(f"{s['lambda_invocations']} Lambda invocations")
        parts.append(f"LLM ${float(s.get('llm_cost_usd', 0.0)):.6f} ({s.get('llm_calls', 0)} calls)")
        return ", ".join(parts)

    def by_status(self) -> str:
        return "  ".join(f"{name} {self.counts[name]}" for name in ORDER if self.counts.get(name))


class View(Protocol):
    """Fed reports of one run: `due` says whether `show` would show a new one now (so the caller fetches it only
    then); `close` shows the last one and ends the view."""

    def start(self, execution_id: str, label: str) -> None: ...

    def due(self) -> bool: ...

    def show(self, report: Mapping[str, Any]) -> None: ...

    def close(self, report: Mapping[str, Any] | None) -> None: ...


class NoView:
    """`--json`: nothing but the one JSON document."""

    def start(self, execution_id: str, label: str) -> None:
        pass

    def due(self) -> bool:
        return False

    def show(self, report: Mapping[str, Any]) -> None:
        pass

    def close(self, report: Mapping[str, Any] | None) -> None:
        pass


class PlainView:
    """Not a terminal: a line at the start, at most one per `interval` while the run goes on, one at the end."""

    def __init__(self, out: TextIO, interval: float = DEFAULT_INTERVAL, clock: Clock = time.monotonic) -> None:
        self.out = out
        self.interval = interval
        self.clock = clock
        self.started = self.last = 0.0
        self.closed = False

    def start(self, execution_id: str, label: str) -> None:
        self.started = self.last = self.clock()
        print(f"agentflow: execution {execution_id} of {label}", file=self.out, flush=True)

    def due(self) -> bool:
        return not self.closed and self.clock() - self.last >= self.interval

    def show(self, report: Mapping[str, Any]) -> None:
        if self.due():
            self.last = self.clock()
            self._line(Snapshot.of(report))

    def close(self, report: Mapping[str, Any] | None) -> None:
        if not self.closed and report is not None:
            self._line(Snapshot.of(report))
        self.closed = True

    def _line(self, snap: Snapshot) -> None:
        elapsed = self.clock() - self.started
        print(
            f"agentflow: {elapsed:.1f}s {snap.status}: {snap.finished}/{snap.queued} node executions finished, "
            f"{len(snap.running)} running; cost {snap.cost()}",
            file=self.out,
            flush=True,
        )


class RichView:
    """A terminal: one display redrawn in place, left on the screen at the end (its last frame)."""

    def __init__(self, out: TextIO, clock: Clock = time.monotonic, refresh: float = REFRESH_SECONDS) -> None:
        self.console = Console(file=out, force_terminal=True, highlight=False)
        self.clock = clock
        self.refresh = refresh
        self.live: Live | None = None
        self.execution_id = self.label = ""
        self.started = self.last = 0.0

    def start(self, execution_id: str, label: str) -> None:
        self.execution_id, self.label = execution_id, label
        self.started = self.clock()
        self.last = self.started - self.refresh  # the first report is shown at once
        # redrawn only when fed (no refresh thread): what is shown follows the injected clock
        self.live = Live(console=self.console, auto_refresh=False, redirect_stdout=False, redirect_stderr=True)
        self.live.start()

    def due(self) -> bool:
        return self.live is not None and self.clock() - self.last >= self.refresh

    def show(self, report: Mapping[str, Any]) -> None:
        if self.live is not None and self.due():
            self.last = self.clock()
            self.live.update(self.render(Snapshot.of(report)), refresh=True)

    def close(self, report: Mapping[str, Any] | None) -> None:
        if self.live is None:
            return
        if report is not None:
            self.live.update(self.render(Snapshot.of(report)), refresh=True)
        self.live.stop()
        self.live = None

    def render(self, snap: Snapshot) -> RenderableType:
        header = Text(f"agentflow: execution {self.execution_id} of {self.label}", style="bold")
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            Text(snap.status, style=f"bold {STYLES.get(snap.status, '')}".strip()),
            ProgressBar(total=max(snap.queued, 1), completed=snap.finished, width=30),
            Text(f"{snap.finished}/{snap.queued} node executions finished"),
        )
        shown = ", ".join(snap.running[:RUNNING_SHOWN]) or "(none)"
        more = len(snap.running) - RUNNING_SHOWN
        running = f"running now: {shown}{f' (+{more} more)' if more > 0 else ''}"
        elapsed = self.clock() - self.started
        return Group(
            header,
            bar,
            Text(f"node executions: {snap.by_status() or '(none yet)'}"),
            Text(running),
            Text(f"elapsed {elapsed:.1f}s  cost: {snap.cost()}"),
        )


def make_view(out: TextIO, *, quiet: bool = False, clock: Clock = time.monotonic) -> View:
    """The view for `out`: none with --json, the live display on a terminal, plain throttled lines elsewhere."""
    if quiet:
        return NoView()
    interval = progress_interval()  # read first: a bad setting is a usage error, whatever the stream
    if out.isatty():
        return RichView(out, clock)
    return PlainView(out, interval, clock)
