"""Dynamic pins (README, "Concepts"): `_$_` list index, `_#_` dict key, `_@_` object attribute.

On the way in, flattened keys such as `values_#_name` are merged into their base field (§3.1). On the way out, a
link's `source_name` may select inside a yielded value, e.g. `response_#_user_$_0` (§3.2).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

from agentflow.errors import InvalidInput

__all__ = [
    "DELIMITERS",
    "DICT_SPLIT",
    "LIST_SPLIT",
    "OBJC_SPLIT",
    "DynamicPinError",
    "DynamicPinIndexError",
    "base_name",
    "is_dynamic",
    "merge_execution_input",
    "select_output",
    "tokenize",
]

LIST_SPLIT = "_$_"
DICT_SPLIT = "_#_"
OBJC_SPLIT = "_@_"
DELIMITERS = (LIST_SPLIT, DICT_SPLIT, OBJC_SPLIT)

Step = tuple[str, str]  # (delimiter, identifier)


class DynamicPinError(InvalidInput):
    """A flattened key could not be merged; `key` names the offending pin."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class DynamicPinIndexError(DynamicPinError, IndexError):
    """A negative list index beyond the list's start (AutoGPT raises IndexError here too)."""


def _next_delimiter(text: str) -> tuple[str | None, int]:
    """The earliest delimiter in `text` and its position, or (None, -1)."""
    found: str | None = None
    position = len(text)
    for delimiter in DELIMITERS:
        index = text.find(delimiter)
        if 0 <= index < position:
            found, position = delimiter, index
    return found, (position if found else -1)


def base_name(pin: str) -> str:
    """Everything before the earliest delimiter: `values_#_a_$_1` -> `values`."""
    _, position = _next_delimiter(pin)
    return pin if position < 0 else pin[:position]


def is_dynamic(pin: str) -> bool:
    return _next_delimiter(pin)[0] is not None


def tokenize(path: str) -> list[Step] | None:
    """Split a path that starts with a delimiter into steps; None when malformed (empty identifier)."""
    steps: list[Step] = []
    while path:
        delimiter = next((d for d in DELIMITERS if path.startswith(d)), None)
        if delimiter is None:
            return None
        path = path[len(delimiter) :]
        _, position = _next_delimiter(path)
        end = len(path) if position < 0 else position
        identifier, path = path[:end], path[end:]
        if not identifier:
            return None
        steps.append((delimiter, identifier))
    return steps


# -- §3.1 merging flattened inputs -----------------------------------------------------------------------


def merge_execution_input(data: Mapping[str, Any]) -> dict[str, Any]:
    """Merge flattened dynamic pins into their base fields, in key order (README, "Concepts").

    Returns a new dict: the input keys (flattened ones included) with the merged base keys written over them.
    `data` and the containers it holds are not mutated, so a cached graph's `input_default` stays intact.
    """
    merged: dict[str, Any] = {}
    owned: dict[int, object] = {}  # containers this merge created or copied (kept alive so ids stay unique)
    for key, value in data.items():
        _, position = _next_delimiter(key)
        if position < 0:
            merged[key] = value
            continue
        steps = tokenize(key[position:])
        if steps is None:
            merged[key] = value  # malformed keys stay verbatim, unmerged
            continue
        base = key[:position]
        try:
            merged[base] = _assign(merged.get(base), steps, value, owned)
        except DynamicPinError as exc:
            raise DynamicPinError(str(exc), key) from None
        except IndexError as exc:
            raise DynamicPinIndexError(f"list index out of range: {exc}", key) from None
        except (TypeError, AttributeError) as exc:  # e.g. `obj_@___class__`
            raise DynamicPinError(f"cannot set attribute: {exc}", key) from None
    return {**data, **merged}


def _assign(container: Any, steps: list[Step], value: Any, owned: dict[int, object]) -> Any:
    if not steps:
        return value
    (delimiter, identifier), rest = steps[0], steps[1:]
    if delimiter == LIST_SPLIT:
        try:
            index = int(identifier)
        except ValueError:
            raise DynamicPinError("index must be an integer") from None
        items = _own_list(container, owned)
        while len(items) <= index:
            items.append(None)
        items[index] = _assign(items[index], rest, value, owned)  # negative index: Python semantics
        return items
    if delimiter == DICT_SPLIT:
        mapping = _own_dict(container, owned)
        mapping[identifier] = _assign(mapping.get(identifier), rest, value, owned)
        return mapping
    target = _own_object(container, owned)
    setattr(target, identifier, _assign(getattr(target, identifier, None), rest, value, owned))
    return target


def _own_list(container: Any, owned: dict[int, object]) -> list[Any]:
    if isinstance(container, list) and id(container) in owned:
        return container
    if container is None:
        items: list[Any] = []
    elif isinstance(container, list) or hasattr(container, "__iter__"):
        items = list(container)
    else:
        items = []
    owned[id(items)] = items
    return items


def _own_dict(container: Any, owned: dict[int, object]) -> dict[Any, Any]:
    if isinstance(container, dict) and id(container) in owned:
        return container
    mapping: dict[Any, Any] = dict(container) if hasattr(container, "items") else {}
    owned[id(mapping)] = mapping
    return mapping


def _own_object(container: Any, owned: dict[int, object]) -> Any:
    if id(container) in owned:
        return container
    if container is None or not hasattr(container, "__dict__"):
        fresh = types.SimpleNamespace()
    else:
        fresh = types.SimpleNamespace(**vars(container))
    owned[id(fresh)] = fresh
    return fresh


# -- §3.2 selecting from an output -----------------------------------------------------------------------


def select_output(pin: str, value: Any, selector: str) -> tuple[bool, Any]:
    """What a link whose `source_name` is `selector` receives when the block yields `(pin, value)`.

    Returns (True, value) when the link fires, (False, None) when it must not: the selector names another pin,
    the path is malformed or does not resolve, or it resolves to None.
    """
    if selector == pin:
        return True, value
    if not selector.startswith(pin):
        return False, None
    steps = tokenize(selector[len(pin) :])
    if steps is None:
        return False, None
    current = value
    for delimiter, identifier in steps:
        found, current = _step(current, delimiter, identifier)
        if not found:
            return False, None
    if current is None:
        return False, None
    return True, current


def _step(current: Any, delimiter: str, identifier: str) -> tuple[bool, Any]:
    if delimiter == LIST_SPLIT:
        try:
            index = int(identifier)
        except ValueError:
            return False, None
        if not isinstance(current, list) or index >= len(current) or index < -len(current):
            return False, None
        return True, current[index]
    if delimiter == DICT_SPLIT:
        if not isinstance(current, dict) or identifier not in current:
            return False, None
        return True, current[identifier]
    # `_@_`: stored outputs are JSON, so a model yielded by a block is a dict by now; read its key.
    if isinstance(current, dict):
        return (identifier in current), current.get(identifier)
    # Never hand out private attributes or methods: they are not data and cannot be stored.
    if identifier.startswith("_") or not hasattr(current, identifier):
        return False, None
    attribute = getattr(current, identifier)
    if callable(attribute):
        return False, None
    return True, attribute
