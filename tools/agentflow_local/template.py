"""Read the SAM template (template.yaml) for the local stack, so local wiring cannot drift from the deployed one.

`load_template` turns every `AWS::Serverless::Function` into a `FunctionSpec` (code folder, handler, timeout,
memory, environment with Globals merged the way SAM merges them) with the triggers the local stack emulates:
EventBridge rules, API routes, schedules and SQS event source mappings. Values stay raw (intrinsics such as
`{"Ref": "Table"}` are kept); `resolve_environment` turns an environment into plain strings with the local names
of the resources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agentflow.errors import InvalidInput
from agentflow_local.event_patterns import event_matches

__all__ = [
    "ApiRoute",
    "AppTemplate",
    "EventRule",
    "FunctionSpec",
    "QueueEvent",
    "ScheduleEvent",
    "TemplateError",
    "load_template",
    "queue_logical_id",
    "resolve_environment",
]

# SAM's defaults when neither the function nor Globals set them.
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128
DEFAULT_BUS = "default"
MAX_BATCH_SIZE = 10_000  # of an SQS event source mapping on a standard queue (SAM's default: 10)


class TemplateError(InvalidInput):
    """The template cannot be read, or asks for something the local stack cannot do."""


@dataclass(frozen=True)
class EventRule:
    """An `EventBridgeRule` (or `CloudWatchEvent`) event of a function."""

    name: str  # the event's logical id inside the function's Events
    bus: str  # logical id of the bus resource, or "default" (or a literal bus name the template gives)
    pattern: dict[str, Any]


@dataclass(frozen=True)
class ApiRoute:
    """An `Api` (or `HttpApi`) event of a function."""

    path: str
    method: str  # upper case; "ANY" for SAM's `any`
    name: str
    auth: bool  # True when API Gateway itself guards the route (an authorizer or a required API key)


@dataclass(frozen=True)
class ScheduleEvent:
    """A `Schedule` (EventBridge rule) or `ScheduleV2` (EventBridge Scheduler) event of a function."""

    name: str
    expression: str  # "rate(1 minute)" or "cron(...)" as written in the template
    enabled: bool = True
    input: str | None = None  # the JSON text the schedule passes as the event, when the template sets one


@dataclass(frozen=True)
class QueueEvent:
    """An `SQS` event of a function: Lambda's event source mapping polls the queue and invokes the function with
    batches of its messages."""

    name: str
    queue: str  # logical id of the queue resource (`!GetAtt Q.Arn` or `!Ref Q`), or the literal ARN written
    batch_size: int = 10
    report_batch_item_failures: bool = False  # FunctionResponseTypes has ReportBatchItemFailures
    enabled: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler_module: str  # "app", or "pkg.module" for a handler under a package
    handler_function: str
    timeout: int
    memory: int
    environment: dict[str, Any]  # Globals merged with the function's variables; raw values, intrinsics kept
    event_rules: tuple[EventRule, ...] = ()
    api_routes: tuple[ApiRoute, ...] = ()
    schedules: tuple[ScheduleEvent, ...] = ()
    queue_events: tuple[QueueEvent, ...] = ()

    @property
    def handler_path(self) -> Path:
        """The file that holds the handler function."""
        return self.code_dir.joinpath(*self.handler_module.split(".")).with_suffix(".py")


@dataclass(frozen=True)
class AppTemplate:
    functions: dict[str, FunctionSpec]
    resources: dict[str, Any]  # every resource as written, Globals not applied
    path: Path | None = None
    globals: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)  # the template's Parameters, as written

    def parameter_defaults(self) -> dict[str, str]:
        """Each parameter's Default as text: what a `!Ref` to it means when nothing overrides it."""
        return {
            name: str(spec["Default"])
            for name, spec in self.parameters.items()
            if isinstance(spec, Mapping) and "Default" in spec
        }

    def event_targets(self) -> list[tuple[FunctionSpec, EventRule]]:
        """Every (function, rule) pair, in template order."""
        return [(spec, rule) for spec in self.functions.values() for rule in spec.event_rules]

    def rules_for(
        self,
        source: str,
        detail_type: str,
        detail: Mapping[str, Any] | None = None,
        *,
        bus: str | None = None,
    ) -> list[tuple[FunctionSpec, EventRule]]:
        """The (function, rule) pairs whose pattern matches such an event; `bus` (a logical id) narrows them."""
        event = {"source": source, "detail-type": detail_type, "detail": dict(detail or {})}
        return [
            (spec, rule)
            for spec, rule in self.event_targets()
            if (bus is None or rule.bus == bus) and event_matches(rule.pattern, event)
        ]

    def api_routes(self) -> list[tuple[FunctionSpec, ApiRoute]]:
        return [(spec, route) for spec in self.functions.values() for route in spec.api_routes]

    def schedules(self) -> list[tuple[FunctionSpec, ScheduleEvent]]:
        return [(spec, sched) for spec in self.functions.values() for sched in spec.schedules]

    def queue_targets(self) -> list[tuple[FunctionSpec, QueueEvent]]:
        """Every (function, SQS event) pair, in template order."""
        return [(spec, event) for spec in self.functions.values() for event in spec.queue_events]

    def resources_of_type(self, resource_type: str) -> list[str]:
        """Logical ids of the resources of one CloudFormation type, e.g. "AWS::Events::EventBus"."""
        return [
            logical_id
            for logical_id, resource in self.resources.items()
            if isinstance(resource, Mapping) and resource.get("Type") == resource_type
        ]


# --- YAML with CloudFormation short tags -------------------------------------------------------------------

# Short tag -> the long form's key. `!GetAtt A.B` is special-cased below; `!Condition X` is {"Condition": X}.
_SHORT_TAGS: dict[str, str] = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "And",
            "Base64",
            "Cidr",
            "Equals",
            "FindInMap",
            "GetAtt",
            "GetAZs",
            "If",
            "ImportValue",
            "Join",
            "Length",
            "Not",
            "Or",
            "Select",
            "Split",
            "Sub",
            "ToJsonString",
            "Transform",
        )
    },
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long (JSON) form."""


def _construct_short_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = _SHORT_TAGS.get(tag_suffix)
    if key is None:
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown CloudFormation tag !{tag_suffix}", node.start_mark
        )
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if key == "Fn::GetAtt":
            # `!GetAtt Resource.Attr.With.Dots` -> ["Resource", "Attr.With.Dots"]
            logical_id, _, attribute = str(value).partition(".")
            value = [logical_id, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, "unexpected node", node.start_mark)
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_short_tag)
_INTRINSIC_KEYS = frozenset(_SHORT_TAGS.values())


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_CfnLoader)


# --- Globals -------------------------------------------------------------------------------------------------


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _INTRINSIC_KEYS


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rules: maps merge (the function wins), lists add up (globals first), scalars override.

    An intrinsic (`{"Ref": ...}`) counts as a scalar, as it does for SAM.
    """
    if isinstance(global_value, Mapping) and isinstance(local_value, Mapping):
        if _is_intrinsic(global_value) or _is_intrinsic(local_value):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


# --- reading functions ---------------------------------------------------------------------------------------


def _bus_logical_id(value: Any) -> str:
    """`EventBusName` of a rule -> the bus resource's logical id ("default" when absent)."""
    if value is None:
        return DEFAULT_BUS
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    raise TemplateError(f"unsupported EventBusName {value!r}: use a name, !Ref or !GetAtt")


def _auth_guards(auth: Any) -> bool | None:
    """Whether an `Auth` block guards the route: True/False when it says so, None when it does not say."""
    if not isinstance(auth, Mapping):
        return None
    authorizer = auth.get("Authorizer", auth.get("DefaultAuthorizer"))
    if authorizer == "NONE":
        return bool(auth.get("ApiKeyRequired", False))
    if authorizer is not None:
        return True
    if "ApiKeyRequired" in auth:
        return bool(auth["ApiKeyRequired"])
    return None


def _route_auth(event_type: str, props: Mapping[str, Any], resources: Mapping[str, Any], glob: Any) -> bool:
    guarded = _auth_guards(props.get("Auth"))
    if guarded is not None:
        return guarded
    # Fall back to the API's own default (an explicit API resource, else the implicit API's Globals).
    api_key = "RestApiId" if event_type == "Api" else "ApiId"
    api_ref = props.get(api_key)
    api_auth: Any = None
    if isinstance(api_ref, Mapping) and "Ref" in api_ref:
        api_resource = resources.get(str(api_ref["Ref"]), {})
        api_auth = api_resource.get("Properties", {}).get("Auth") if isinstance(api_resource, Mapping) else None
    if api_auth is None and isinstance(glob, Mapping):
        api_auth = glob.get(event_type, {}).get("Auth")
    return bool(_auth_guards(api_auth))


def _int_property(logical_id: str, name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TemplateError(f"{logical_id}: {name} must be a number for the local stack, not {value!r}")
    try:
        return int(value)
    except ValueError:
        raise TemplateError(f"{logical_id}: {name} must be a number, not {value!r}") from None


def _schedule_event(event_name: str, event_type: str, event_props: Mapping[str, Any]) -> ScheduleEvent:
    """A `Schedule` (EventBridge rule: Schedule, Enabled or State) or `ScheduleV2` (EventBridge Scheduler:
    ScheduleExpression, State) event."""
    enabled = str(event_props.get("State", "ENABLED")) == "ENABLED"
    if event_type == "Schedule":
        expression = event_props.get("Schedule")
        enabled = enabled and bool(event_props.get("Enabled", True))
    else:
        expression = event_props.get("ScheduleExpression")
    return ScheduleEvent(event_name, str(expression), enabled=enabled, input=event_props.get("Input"))


def queue_logical_id(where: str, value: Any) -> str:
    """`!GetAtt Q.Arn` or `!Ref Q` -> "Q"; a literal (an ARN) stays as written."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and len(value) == 1:
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        target = value.get("Fn::GetAtt")
        if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
            return str(target[0])
    raise TemplateError(f"{where}: unsupported queue {value!r}: use !GetAtt Queue.Arn, !Ref Queue or an ARN")


def _queue_event(where: str, event_name: str, event_props: Mapping[str, Any]) -> QueueEvent:
    """An `SQS` event: Queue, BatchSize, FunctionResponseTypes and Enabled, with Lambda's defaults."""
    batch_size = _int_property(where, "BatchSize", event_props.get("BatchSize"), 10)
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise TemplateError(f"{where}: BatchSize must be between 1 and {MAX_BATCH_SIZE}, not {batch_size}")
    return QueueEvent(
        name=event_name,
        queue=queue_logical_id(where, event_props.get("Queue")),
        batch_size=batch_size,
        report_batch_item_failures="ReportBatchItemFailures" in (event_props.get("FunctionResponseTypes") or []),
        enabled=bool(event_props.get("Enabled", True)),
    )


def _read_function(
    logical_id: str, props: Mapping[str, Any], root: Path, resources: Mapping[str, Any], glob: Mapping[str, Any]
) -> FunctionSpec:
    code_uri = props.get("CodeUri")
    if not isinstance(code_uri, str):
        raise TemplateError(f"{logical_id}: CodeUri must be a local folder for the local stack, not {code_uri!r}")
    handler = props.get("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{logical_id}: Handler must look like 'module.function', not {handler!r}")
    module, _, function = handler.rpartition(".")

    environment = (props.get("Environment") or {}).get("Variables") or {}
    rules, routes, schedules, queue_events = _read_events(logical_id, props, resources, glob)
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=(root / code_uri).resolve(),
        handler_module=module,
        handler_function=function,
        timeout=_int_property(logical_id, "Timeout", props.get("Timeout"), DEFAULT_TIMEOUT),
        memory=_int_property(logical_id, "MemorySize", props.get("MemorySize"), DEFAULT_MEMORY),
        environment=dict(environment),
        event_rules=tuple(rules),
        api_routes=tuple(routes),
        schedules=tuple(schedules),
        queue_events=tuple(queue_events),
    )


def _read_events(
    logical_id: str, props: Mapping[str, Any], resources: Mapping[str, Any], glob: Mapping[str, Any]
) -> tuple[list[EventRule], list[ApiRoute], list[ScheduleEvent], list[QueueEvent]]:
    """A function's EventBridge rules, API routes, schedules and SQS events."""
    rules: list[EventRule] = []
    routes: list[ApiRoute] = []
    schedules: list[ScheduleEvent] = []
    queue_events: list[QueueEvent] = []
    for event_name, event in (props.get("Events") or {}).items():
        event_type = event.get("Type")
        event_props: Mapping[str, Any] = event.get("Properties") or {}
        if event_type in ("EventBridgeRule", "CloudWatchEvent"):
            pattern = event_props.get("Pattern")
            if not isinstance(pattern, Mapping):
                raise TemplateError(f"{logical_id}.{event_name}: an EventBridge rule needs a Pattern mapping")
            rules.append(EventRule(event_name, _bus_logical_id(event_props.get("EventBusName")), dict(pattern)))
        elif event_type in ("Api", "HttpApi"):
            method = str(event_props.get("Method", "any")).upper()
            routes.append(
                ApiRoute(
                    path=str(event_props.get("Path", "/$default")),
                    method=method,
                    name=event_name,
                    auth=_route_auth(event_type, event_props, resources, glob),
                )
            )
        elif event_type in ("Schedule", "ScheduleV2"):
            schedules.append(_schedule_event(event_name, event_type, event_props))
        elif event_type == "SQS":
            queue_events.append(_queue_event(f"{logical_id}.{event_name}", event_name, event_props))
        # Other event types (S3, SNS, Kinesis, ...) have no local emulation; they are ignored here.
    return rules, routes, schedules, queue_events


def load_template(path: Path) -> AppTemplate:
    """Read a SAM template. Relative CodeUri folders are taken from the template's own folder."""
    path = Path(path)
    try:
        document = _load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("Resources"), Mapping):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources mapping)")

    resources: dict[str, Any] = dict(document["Resources"])
    glob: dict[str, Any] = dict(document.get("Globals") or {})
    function_globals: Mapping[str, Any] = glob.get("Function") or {}
    root = path.resolve().parent

    functions: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = _merge_globals(function_globals, resource.get("Properties") or {})
        functions[logical_id] = _read_function(logical_id, props, root, resources, glob)
    parameters: dict[str, Any] = dict(document.get("Parameters") or {})
    return AppTemplate(functions=functions, resources=resources, path=path, globals=glob, parameters=parameters)


# --- environment ---------------------------------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")


def _lookup(name: str, refs: Mapping[str, str], where: str) -> str:
    try:
        return refs[name]
    except KeyError:
        known = ", ".join(sorted(refs)) or "none"
        raise TemplateError(f"{where}: unknown reference {name!r} (known: {known})") from None


def _resolve_value(value: Any, refs: Mapping[str, str], where: str) -> str:
    """One environment value -> a string. Supports Ref, GetAtt (as "Logical.Attr" keys of refs), Sub, Join."""
    if isinstance(value, bool):  # before int: bool is an int; CloudFormation writes booleans in lower case
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, Mapping) and len(value) == 1:
        (key, arg), *_ = value.items()
        if key == "Ref":
            return _lookup(str(arg), refs, where)
        if key == "Fn::GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return _lookup(".".join(str(p) for p in parts), refs, where)
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            variables = {**refs, **{k: _resolve_value(v, refs, where) for k, v in extra.items()}}

            def substitute(match: re.Match[str]) -> str:
                if match.group(1):  # "${!Literal}" stays "${Literal}"
                    return "${" + match.group(2) + "}"
                return _lookup(match.group(2), variables, where)

            return _SUB_VARIABLE.sub(substitute, str(text))
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(_resolve_value(item, refs, where) for item in items)
    raise TemplateError(f"{where}: cannot resolve {value!r} locally (supported: Ref, GetAtt, Sub, Join)")


def resolve_environment(env: Mapping[str, Any], refs: Mapping[str, str]) -> dict[str, str]:
    """Turn a function's raw environment into strings, replacing `{"Ref": X}` by `refs[X]`.

    `refs` maps logical ids (and pseudo parameters such as "AWS::Region", and "Logical.Attr" for GetAtt)
    to their local values, e.g. {"Table": "agentflow-local", "EventBus": "agentflow-local-bus"}.
    An unknown reference raises TemplateError naming the variable and the known references.
    """
    return {name: _resolve_value(value, refs, f"environment variable {name}") for name, value in env.items()}
