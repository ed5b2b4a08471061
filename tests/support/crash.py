"""A process that dies before its n-th write: each named Store method, once patched, counts its call and raises
Crash on the chosen one (the fault-injection tests crash a run at every write in turn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from agentflow.store import Store


class Crash(Exception):
    """The process died here."""


def install_crash(monkeypatch: pytest.MonkeyPatch, crash_at: int, writes: Sequence[str]) -> dict[str, Any]:
    """Patch every Store method in `writes`; the `crash_at`-th call among them raises Crash (0: never). The state
    counts the calls (`writes`) and names the method that crashed (`crashed`)."""
    state: dict[str, Any] = {"writes": 0, "crashed": None}
    for name in writes:
        real = getattr(Store, name)

        def wrapper(self: Store, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            state["writes"] += 1
            if state["writes"] == crash_at:
                state["crashed"] = _name
                raise Crash(f"died before {_name}")
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, wrapper)
    return state
