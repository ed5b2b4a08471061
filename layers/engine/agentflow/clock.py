"""The one source of "now" for the engine: a callable returning epoch seconds, injected wherever time matters,
so tests control time completely (a suite must pass on any date)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]

system_clock: Clock = time.time


def iso_at(epoch_seconds: float) -> str:
    """`2026-12-01T09:00:00.123Z`: the timestamp format of every stored item (sorts as text)."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_of(timestamp: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp written by `iso_at` (or any with an offset or a `Z`)."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
