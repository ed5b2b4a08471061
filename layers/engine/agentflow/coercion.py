"""Lossy input coercion to a pin's declared type, the way AutoGPT does it (README, "Compatibility with AutoGPT").

A value is coerced only when it does not already satisfy the annotation, so well-typed data passes through
untouched (same object). Types outside str/int/float/bool/list/dict/tuple/set (dates, enums, literals, models)
pass through for pydantic to validate.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

from agentflow.errors import InvalidInput

__all__ = ["ConversionError", "convert", "satisfies"]

_CONVERTIBLE: frozenset[type] = frozenset({str, int, float, bool, list, dict, tuple, set})
_NONE_TYPE = type(None)


class ConversionError(InvalidInput):
    """A value could not be converted (e.g. it is not JSON-serializable when converting to str)."""


def convert(value: Any, target: Any) -> Any:
    """Coerce `value` to the annotation `target`, as AutoGPT does. Raises ConversionError when it cannot."""
    try:
        return _convert(value, target)
    except ConversionError:
        raise
    except Exception as exc:  # json.dumps(TypeError), set() of unhashables, recursion, ...
        raise ConversionError(f"cannot convert {type(value).__name__} to {_type_name(target)}: {exc}") from exc


def satisfies(value: Any, target: Any) -> bool:
    """True when `value` already has the shape `target` asks for, so no coercion applies.

    Types this module does not convert (dates, enums, models, Literal, ...) always count as satisfied.
    """
    target = _strip_annotated(target)
    if target is Any or target is object:
        return True
    if target is None or target is _NONE_TYPE:
        return value is None
    origin, args = _origin_args(target)
    if _is_union(origin):
        return any(satisfies(value, member) for member in args)
    if origin not in _CONVERTIBLE:
        return True
    if not isinstance(value, origin):
        return False
    if not args:
        return True
    if origin is dict:
        key_type, value_type = args
        return all(satisfies(k, key_type) and satisfies(v, value_type) for k, v in value.items())
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return all(satisfies(v, args[0]) for v in value)
        return len(value) == len(args) and all(satisfies(v, t) for v, t in zip(value, args, strict=True))
    return all(satisfies(v, args[0]) for v in value)


# -- internals ------------------------------------------------------------------------------------------


def _strip_annotated(target: Any) -> Any:
    while get_origin(target) is Annotated:
        target = get_args(target)[0]
    return target


def _origin_args(target: Any) -> tuple[Any, tuple[Any, ...]]:
    origin = get_origin(target)
    return (target if origin is None else origin), get_args(target)


def _is_union(origin: Any) -> bool:
    return origin is Union or origin is types.UnionType


def _type_name(target: Any) -> str:
    return getattr(target, "__name__", None) or repr(target)


def _convert(value: Any, target: Any) -> Any:
    target = _strip_annotated(target)
    if satisfies(value, target):
        return value
    origin, args = _origin_args(target)
    if _is_union(origin):
        return _convert_union(value, args)
    if origin not in _CONVERTIBLE:
        return value
    converted = _SCALAR_CONVERTERS[origin](value)
    return _convert_elements(converted, origin, args) if args else converted


def _convert_union(value: Any, members: tuple[Any, ...]) -> Any:
    if value is None:
        return None
    # Members are tried in declaration order; the first one that converts without raising wins.
    for member in members:
        if member is _NONE_TYPE:
            continue
        try:
            return _convert(value, member)
        except Exception:
            continue
    return value


def _convert_elements(value: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    if origin is list:
        return [_convert(v, args[0]) for v in value]
    if origin is set:
        return {_convert(v, args[0]) for v in value}
    if origin is dict:
        key_type, value_type = args
        return {_convert(k, key_type): _convert(v, value_type) for k, v in value.items()}
    if origin is tuple:
        if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_convert(v, args[0]) for v in value)
        return tuple(_convert(v, t) for v, t in zip(value, args, strict=False))
    return value


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)  # stdlib defaults: ", " / ": " separators, ASCII-escaped


def _to_number[N: (int, float)](value: Any, kind: type[N]) -> N:
    if isinstance(value, (list, dict, tuple, set)):
        return kind(len(value))
    try:
        return kind(float(value))
    except (ValueError, TypeError, OverflowError):  # "abc", None, objects, int("inf")
        return kind(0)


def _to_int(value: Any) -> int:
    return _to_number(value, int)


def _to_float(value: Any) -> float:
    return _to_number(value, float)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _to_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set)):
        return list(value)
    if isinstance(value, dict):
        return [[k, v] for k, v in value.items()]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                return [text]
            return parsed if isinstance(parsed, list) else [parsed]
        return [text]
    return [value]


def _to_dict(value: Any) -> dict[Any, Any]:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {"value": value}
        return parsed if isinstance(parsed, dict) else {"value": parsed}
    if isinstance(value, (list, tuple)):
        return dict(enumerate(value))
    if isinstance(value, dict):
        return value
    return {"value": value}


def _to_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, list, set, tuple)):
        return tuple(value)
    if isinstance(value, dict):
        return tuple(value.items())
    return (value,)


def _to_set(value: Any) -> set[Any]:
    if isinstance(value, (str, list, tuple, set)):
        return set(value)
    if isinstance(value, dict):
        return set(value.items())
    return {value}


_SCALAR_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    list: _to_list,
    dict: _to_dict,
    tuple: _to_tuple,
    set: _to_set,
}
