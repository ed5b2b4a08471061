"""How many runs were RUNNING at once, from their status histories (`[{"status", "at"}, ...]`, `at` as the store
writes it: ISO 8601 UTC with milliseconds, which sorts as text)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def running_intervals(histories: Iterable[Sequence[Mapping[str, Any]]]) -> list[tuple[str, str]]:
    """(RUNNING at, the next status's at) of every RUNNING stretch; a stretch still open ends at "~" (after all)."""
    intervals = []
    for history in histories:
        for step, after in itertools.pairwise([*history, {"status": None, "at": "~"}]):
            if step["status"] == "RUNNING":
                intervals.append((str(step["at"]), str(after["at"])))
    return intervals


def most_at_once(intervals: Iterable[tuple[str, str]]) -> int:
    """The most intervals open at one moment. A run's end is written before the give-back that lets another run
    start, so an end and a start at the same timestamp do not overlap: at one timestamp, ends count first."""
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, change in moments:  # (t, -1) sorts before (t, 1)
        open_now += change
        peak = max(peak, open_now)
    return peak
