"""Engine rules that apply to every block (README, "Built-in blocks"): building the input, running, encoding outputs.

The executor calls `execute_block`; it never raises for a block's own failure, it returns a failed `BlockRun`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.aliases import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError, to_jsonable_python

from agentflow.blocks.sdk import Block, BlockContext, BlockSchema, BlockType
from agentflow.coercion import convert
from agentflow.errors import AgentflowError, DeferredRun, InvalidInput, RetryableError
from agentflow.llm.usage import BudgetExceeded
from agentflow.pins import DynamicPinError, merge_execution_input

__all__ = ["BlockInputError", "BlockRun", "OutputEncodingError", "build_input", "encode_output", "execute_block"]

ERROR_PIN = "error"


@dataclass(frozen=True)
class BlockRun:
    """What one run of a block produced.

    `outputs` holds JSON-ready `(pin, value)` pairs in yield order. When the run failed, `error` is the message
    and the last pair is `("error", message)`, whether or not the block declares an error pin.
    """

    outputs: list[tuple[str, Any]]
    error: str | None
    retryable: bool = False  # the failure is transient (RetryableError): the engine may run the node again
    retry_after: float | None = None  # the server's hint, in seconds
    deferred_seconds: float | None = None  # the block asked to run again after this long (DeferredRun)
    fails_run: bool = False  # the failure ends the run whatever the error pin says (the run's budget is used up)
    usage: dict[str, Any] | None = None  # its LLM usage (agentflow.llm.usage.LlmUsage.to_dict), when it called one

    @property
    def ok(self) -> bool:
        return self.error is None


class BlockInputError(InvalidInput):
    """The node's input data cannot build the block's Input model. Each problem names its pin."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class OutputEncodingError(AgentflowError, ValueError):
    """A yielded value cannot be stored as strict JSON."""


# -- input -----------------------------------------------------------------------------------------------


def input_keys(field: FieldInfo, name: str) -> list[str]:
    """Keys a field may arrive under: its name, then any validation alias choices (e.g. legacy names)."""
    keys = [name]
    alias = field.validation_alias
    if isinstance(alias, str):
        keys.append(alias)
    elif isinstance(alias, AliasChoices):
        keys.extend(choice for choice in alias.choices if isinstance(choice, str))
    return list(dict.fromkeys(keys))


def _describe_type(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def build_input(block: type[Block], data: Mapping[str, Any]) -> BlockSchema:
    """Merge dynamic pins, coerce, drop nulls, check required fields, validate (README, "How a run executes")."""
    try:
        merged = merge_execution_input(data)
    except DynamicPinError as exc:  # the link's delivery cannot build this input (§3.1)
        raise BlockInputError([f"input '{exc.key}': {exc}"]) from exc

    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, field in block.Input.model_fields.items():
        raw = next((merged[k] for k in input_keys(field, name) if merged.get(k) is not None), None)
        if raw is None:  # null means "not given": the default applies (§1.3g)
            if field.is_required():
                problems.append(f"missing required input '{name}'")
            continue
        try:
            values[name] = convert(raw, field.annotation)
        except ValueError as exc:
            problems.append(f"input '{name}': {exc}")

    try:
        model = block.Input.model_validate(values, by_name=True)
    except ValidationError as exc:
        for err in exc.errors():
            if err["type"] == "missing":
                continue  # already reported above, once per field
            pin = ".".join(str(part) for part in err["loc"]) or "?"
            problems.append(f"input '{pin}': {err['msg']}")
        if not problems:  # defensive: never swallow a validation failure
            problems.append(str(exc))
        raise BlockInputError(problems) from exc
    if problems:
        raise BlockInputError(problems)
    return model


# -- output ----------------------------------------------------------------------------------------------


def encode_output(value: Any) -> Any:
    """The JSON form the engine stores: tuples/sets -> lists, dates -> ISO strings, models -> dicts.

    Raises OutputEncodingError for NaN, infinities and values JSON cannot represent.
    """
    return _encode(value, "")


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, Enum):
        return _encode(value.value, where)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)  # plain str, e.g. from Markup
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OutputEncodingError(f"{value} is not allowed in JSON{_at(where)}")
        return value
    if isinstance(value, Mapping):
        return {_encode_key(k, where): _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, BaseModel):
        return _encode(value.model_dump(), where)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, types.SimpleNamespace):  # what `_@_` dynamic pins build
        return _encode(vars(value), where)
    try:
        return _encode(to_jsonable_python(value), where)  # UUID, Decimal, dataclasses, bytes, ...
    except PydanticSerializationError:
        raise OutputEncodingError(f"a {type(value).__name__} value is not JSON-serializable{_at(where)}") from None


def _encode_key(key: Any, where: str) -> str:
    if isinstance(key, Enum):
        key = key.value
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, (bool, int, float)):
        if isinstance(key, float) and not math.isfinite(key):
            raise OutputEncodingError(f"key {key} is not allowed in JSON{_at(where)}")
        return json.dumps(key)  # the key JSON would write: 0 -> "0", True -> "true", None -> "null"
    raise OutputEncodingError(f"a {type(key).__name__} dict key is not JSON-serializable{_at(where)}")


def _at(where: str) -> str:
    return f" (at {where})" if where else ""


_ADAPTERS: dict[tuple[type[Block], str], TypeAdapter[Any]] = {}


def _output_adapter(block: type[Block], pin: str) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get((block, pin))
    if adapter is None:  # built once per pin: building a TypeAdapter is far slower than using it
        annotation = block.Output.model_fields[pin].annotation
        adapter = _ADAPTERS[(block, pin)] = TypeAdapter(Any if annotation is None else annotation)
    return adapter


def _check_output(block: type[Block], pin: str, value: Any) -> str | None:
    """Standard blocks only (§1.5): the pin must exist and the value must match its annotation."""
    if pin not in block.Output.model_fields:
        return f"{block.name()} yielded unknown output '{pin}'"
    try:
        _output_adapter(block, pin).validate_python(value)
    except ValidationError as exc:
        reasons = "; ".join(err["msg"] for err in exc.errors())
        expected = _describe_type(block.Output.model_fields[pin].annotation)
        return f"output '{pin}' does not match its type {expected}: {reasons}"
    return None


# -- run -------------------------------------------------------------------------------------------------


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _failed(outputs: list[tuple[str, Any]], message: str) -> BlockRun:
    return BlockRun(outputs=[*outputs, (ERROR_PIN, message)], error=message)


def execute_block(block: type[Block], data: Mapping[str, Any], context: BlockContext) -> BlockRun:
    """Build the input, run the block and collect its JSON-encoded outputs in yield order.

    Never raises for the block's own failures: a yielded `error`, an exception, a bad input or a bad output
    all give a failed BlockRun whose outputs keep what was yielded before.
    """
    try:
        input_data = build_input(block, data)
    except BlockInputError as exc:
        return _failed([], f"invalid input for {block.name()}: {'; '.join(exc.problems)}")
    except Exception as exc:  # a bug or an exotic value must fail the node, never the executor
        return _failed([], f"invalid input for {block.name()}: {_message(exc)}")

    outputs: list[tuple[str, Any]] = []
    checked = block.block_type is BlockType.STANDARD
    try:
        for pin, value in block().run(input_data, context):
            if pin == ERROR_PIN:
                return _failed(outputs, str(value) if value is not None else "the block reported an error")
            try:
                encoded = encode_output(value)
            except OutputEncodingError as exc:
                return _failed(outputs, f"output '{pin}' cannot be stored as JSON: {exc}")
            if checked and (problem := _check_output(block, pin, encoded)):
                return _failed(outputs, problem)
            outputs.append((pin, encoded))
    except DeferredRun as exc:  # a wait: whatever it yielded is dropped, the node runs again later
        return BlockRun([], None, deferred_seconds=max(exc.delay_seconds, 0.0))
    except BudgetExceeded as exc:  # the run's budget: the node fails, and the run with it
        return BlockRun([*outputs, (ERROR_PIN, _message(exc))], _message(exc), fails_run=True)
    except RetryableError as exc:  # transient: whatever it yielded is dropped, the attempt runs again
        return BlockRun([(ERROR_PIN, _message(exc))], _message(exc), retryable=True, retry_after=exc.retry_after)
    except Exception as exc:  # BlockError or anything else: the message is the exception's text
        return _failed(outputs, _message(exc))
    return BlockRun(outputs=outputs, error=None)
