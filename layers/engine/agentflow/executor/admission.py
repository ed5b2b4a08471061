"""Concurrency limits (README, "Concurrency limits"): a cap on the runs of one graph of one user that go at once.
A run over the cap waits QUEUED and starts, oldest first, when a slot frees."""

from __future__ import annotations

from agentflow.executor.start import Starting


class Admission(Starting):
    pass
