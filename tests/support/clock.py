"""A clock a test moves by hand: pass it wherever the code takes one (`Store(clock=)`, `LocalStackConfig(clock=)`)."""

from __future__ import annotations


class FakeClock:
    """Epoch seconds that change only when the test says so (`clock.now += 60`)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
