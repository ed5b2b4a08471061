"""The sandboxed Jinja2 engine used by FillTextTemplateBlock and AgentOutputBlock (README, "Built-in blocks").

Templates come from graph authors, so rendering is sandboxed and bounded: no globals but a capped `range`,
no filters that can leak or explode (`pprint`, `tojson`, `urlize`, `xmlattr`), `**` and sequence repetition
limits, and a wall-clock limit on rendering.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from jinja2 import BaseLoader, TemplateError
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from agentflow.errors import InvalidInput

__all__ = [
    "MAX_POWER_OPERAND",
    "MAX_RANGE",
    "MAX_REPEAT",
    "RENDER_TIMEOUT_SECONDS",
    "TemplateRenderError",
    "TextFormatter",
    "render_template",
]

MAX_RANGE = 10_000
MAX_POWER_OPERAND = 1_000
MAX_REPEAT = 10_000
RENDER_TIMEOUT_SECONDS = 10.0
REMOVED_FILTERS = ("pprint", "tojson", "urlize", "xmlattr")

_deadline = threading.local()  # per render thread: the monotonic time at which rendering must stop


class TemplateRenderError(InvalidInput):
    """The template is invalid, broke a sandbox rule, failed while rendering, or took too long."""


class _RenderTimeout(SecurityError):
    pass


def _check_deadline() -> None:
    deadline: float | None = getattr(_deadline, "value", None)
    if deadline is not None and time.monotonic() > deadline:
        raise _RenderTimeout("template rendering timed out")


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range() of {len(result)} items exceeds the limit of {MAX_RANGE}")
    return result


def _format_filter(value: Any, format_string: str | None = None) -> Any:
    # AutoGPT's meaning: `x|format("%.2f")` formats x as a float; without an argument x is returned unchanged.
    if format_string:
        return format_string % float(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _power_too_big(base: Any, exponent: Any) -> bool:
    return _is_number(base) and _is_number(exponent) and max(abs(base), abs(exponent)) > MAX_POWER_OPERAND


def _repeat_length(left: Any, right: Any) -> int | None:
    """Length of `left * right` when it repeats a sequence, else None."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
            return len(sequence) * max(count, 0)
    return None


class SafeEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*"})

    def __init__(self, autoescape: bool) -> None:
        super().__init__(loader=BaseLoader(), autoescape=autoescape, keep_trailing_newline=False)
        self.globals.clear()
        self.globals["range"] = _safe_range
        for name in REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters["format"] = _format_filter

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
        if operator == "**" and _power_too_big(left, right):
            raise SecurityError(f"'**' operands must be within ±{MAX_POWER_OPERAND} (got {left!r} ** {right!r})")
        if operator == "*":
            length = _repeat_length(left, right)
            if length is not None and length > MAX_REPEAT:
                raise SecurityError(f"sequence repetition of {length} items exceeds the limit of {MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)

    # Loops that touch data pass through these hooks, so an overlong render stops instead of running on.
    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_deadline()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check_deadline()
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        return super().call(__context, __obj, *args, **kwargs)


class TextFormatter:
    """Renders templates in the sandbox, autoescaping HTML when asked."""

    def __init__(self, autoescape: bool = False, timeout: float = RENDER_TIMEOUT_SECONDS) -> None:
        self.env = SafeEnvironment(autoescape=autoescape)
        self.timeout = timeout

    def render(self, template: str, values: Mapping[str, Any]) -> str:
        """Render `template` with `values` as its context. Raises TemplateRenderError."""
        outcome: dict[str, Any] = {}
        deadline = time.monotonic() + self.timeout

        def work() -> None:
            _deadline.value = deadline
            try:
                compiled = self.env.from_string(template)
                parts: list[str] = []
                for chunk in compiled.generate(dict(values)):
                    _check_deadline()
                    parts.append(chunk)
                outcome["text"] = "".join(parts)
            except BaseException as exc:  # handed over to the caller's thread
                outcome["error"] = exc

        # A worker thread enforces the time limit even when a single step never returns to our hooks.
        worker = threading.Thread(target=work, name="template-render", daemon=True)
        worker.start()
        worker.join(self.timeout)
        error = outcome.get("error")
        if worker.is_alive() or isinstance(error, _RenderTimeout):
            raise TemplateRenderError(f"template rendering took longer than {self.timeout:g} s")
        if error is None:
            return str(outcome["text"])
        if isinstance(error, TemplateSyntaxError):
            message = f"invalid template: {error}"
        elif isinstance(error, SecurityError):
            message = f"unsafe template: {error}"
        elif isinstance(error, TemplateError):
            message = f"template error: {error}"
        else:
            message = f"template error: {type(error).__name__}: {error}"
        raise TemplateRenderError(message) from error


_FORMATTERS = {escape: TextFormatter(autoescape=escape) for escape in (False, True)}


def render_template(template: str, values: Mapping[str, Any], *, escape_html: bool = False) -> str:
    """Render with the shared sandbox (autoescape = `escape_html`). Raises TemplateRenderError."""
    return _FORMATTERS[escape_html].render(template, values)
