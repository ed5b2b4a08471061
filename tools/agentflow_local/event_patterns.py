"""The EventBridge event-pattern language, for the local bus and the template reader.

No pattern-matching library on PyPI is both small and maintained, so `event_matches` implements the language:
exact values, prefix, suffix, equals-ignore-case, anything-but, exists, numeric, cidr, wildcard and `$or`, on
any field including nested detail fields and arrays. `validate_pattern` refuses what EventBridge would refuse,
so a typo in template.yaml fails when the local stack starts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentflow.errors import InvalidInput

__all__ = ["PatternError", "event_matches", "validate_pattern"]


class PatternError(InvalidInput):
    """An event pattern EventBridge would refuse."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, value: Any) -> bool:
    """EventBridge's exact match: same JSON type and value (numbers compare as numbers, True is not 1)."""
    if _is_number(expected):
        return _is_number(value) and float(value) == float(expected)
    if isinstance(expected, bool) or expected is None:
        return value is expected
    return isinstance(value, str) and value == expected


def _text_match(spec: Any, value: Any, test: Callable[[str, str], bool]) -> bool:
    """prefix/suffix: a string, a list of strings, or {"equals-ignore-case": s}."""
    if not isinstance(value, str):
        return False
    if isinstance(spec, Mapping):
        wanted = spec.get("equals-ignore-case")
        return isinstance(wanted, str) and test(value.casefold(), wanted.casefold())
    if isinstance(spec, list):
        return any(isinstance(s, str) and test(value, s) for s in spec)
    return isinstance(spec, str) and test(value, spec)


def _wildcard(spec: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    specs = spec if isinstance(spec, list) else [spec]
    for s in specs:
        regex = ".*".join(re.escape(part) for part in str(s).split("*"))
        if re.fullmatch(regex, value, flags=re.DOTALL):
            return True
    return False


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def _numeric(spec: Sequence[Any], value: Any) -> bool:
    if not _is_number(value):
        return False
    pairs = zip(spec[::2], spec[1::2], strict=True)
    return all(_NUMERIC_OPS[op](float(value), float(bound)) for op, bound in pairs)


def _cidr(spec: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def _anything_but(spec: Any, value: Any) -> bool:
    if isinstance(spec, Mapping):
        (op, arg), *_ = spec.items()
        if op == "prefix":
            return not _text_match(arg, value, str.startswith)
        if op == "suffix":
            return not _text_match(arg, value, str.endswith)
        if op == "equals-ignore-case":
            wanted = arg if isinstance(arg, list) else [arg]
            return not (isinstance(value, str) and value.casefold() in {str(w).casefold() for w in wanted})
        if op == "wildcard":
            return not _wildcard(arg, value)
        raise PatternError(f"unsupported anything-but operator {op!r}")
    excluded = spec if isinstance(spec, list) else [spec]
    return not any(_equal(e, value) for e in excluded)


def _leaf_matches(matcher: Any, value: Any) -> bool:
    """One element of a pattern list against one present value (`exists` is handled by the caller)."""
    if not isinstance(matcher, Mapping):
        return _equal(matcher, value)
    (op, arg), *_ = matcher.items()
    if op == "exists":
        return bool(arg)
    if op == "prefix":
        return _text_match(arg, value, str.startswith)
    if op == "suffix":
        return _text_match(arg, value, str.endswith)
    if op == "equals-ignore-case":
        return isinstance(value, str) and isinstance(arg, str) and value.casefold() == arg.casefold()
    if op == "anything-but":
        return _anything_but(arg, value)
    if op == "numeric":
        return _numeric(arg, value)
    if op == "cidr":
        return _cidr(arg, value)
    if op == "wildcard":
        return _wildcard(arg, value)
    raise PatternError(f"unsupported pattern operator {op!r}")


def _flatten(value: Any, out: list[Any]) -> None:
    # EventBridge matches an array field when any of its elements matches.
    if isinstance(value, list):
        for item in value:
            _flatten(item, out)
    else:
        out.append(value)


def _match_nodes(pattern: Mapping[str, Any], nodes: list[Any]) -> bool:
    """Every key of the pattern must match; `nodes` are the event objects at this level (several under arrays)."""
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_match_nodes(alternative, nodes) for alternative in sub):
                return False
            continue
        found: list[Any] = []
        for node in nodes:
            if isinstance(node, Mapping) and key in node:
                _flatten(node[key], found)
        if isinstance(sub, Mapping):
            if not _match_nodes(sub, [f for f in found if isinstance(f, Mapping)]):
                return False
            continue
        leaves = [f for f in found if not isinstance(f, Mapping)]
        if not leaves:
            # A missing field (or one holding only objects or an empty array) matches only {"exists": false}.
            if not any(isinstance(m, Mapping) and m.get("exists") is False for m in sub):
                return False
            continue
        if not any(_leaf_matches(m, v) for m in sub for v in leaves):
            return False
    return True


def event_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether an EventBridge event (the dict a target receives, `detail` parsed) matches a pattern."""
    return _match_nodes(pattern, [event])


def validate_pattern(pattern: Any, where: str = "pattern") -> None:
    """Raise PatternError for a pattern EventBridge would refuse, so a typo in template.yaml fails at start."""
    if not isinstance(pattern, Mapping):
        raise PatternError(f"{where}: must be an object, not {pattern!r}")
    for key, sub in pattern.items():
        here = f"{where}.{key}"
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError(f"{here}: $or needs a list of at least two patterns")
            for i, alternative in enumerate(sub):
                validate_pattern(alternative, f"{here}[{i}]")
        elif isinstance(sub, Mapping):
            validate_pattern(sub, here)
        elif isinstance(sub, list):
            if not sub:
                raise PatternError(f"{here}: empty arrays are not allowed")
            for matcher in sub:
                _validate_matcher(matcher, here)
        else:
            raise PatternError(f"{here}: must be an object or an array, not {sub!r}")


def _validate_matcher(matcher: Any, where: str) -> None:
    if not isinstance(matcher, Mapping):
        if isinstance(matcher, list):
            raise PatternError(f"{where}: nested arrays are not allowed")
        return
    if len(matcher) != 1:
        raise PatternError(f"{where}: a matcher object holds exactly one operator, not {dict(matcher)!r}")
    (op, arg), *_ = matcher.items()
    if op == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            raise PatternError(f"{where}: numeric takes [op, n] or [op, n, op, n], not {arg!r}")
        for op_, bound in zip(arg[::2], arg[1::2], strict=True):
            if op_ not in _NUMERIC_OPS or not _is_number(bound):
                raise PatternError(f"{where}: bad numeric comparison {op_!r} {bound!r}")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise PatternError(f"{where}: exists takes true or false")
    elif op == "cidr":
        try:
            ipaddress.ip_network(str(arg), strict=False)
        except ValueError:
            raise PatternError(f"{where}: bad cidr {arg!r}") from None
    elif op == "anything-but":
        if isinstance(arg, Mapping) and next(iter(arg), None) not in (
            "prefix",
            "suffix",
            "equals-ignore-case",
            "wildcard",
        ):
            raise PatternError(f"{where}: unsupported anything-but operator {dict(arg)!r}")
    elif op not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        raise PatternError(f"{where}: unsupported operator {op!r}")
