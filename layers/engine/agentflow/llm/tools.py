"""The Orchestrator's tools (BLOCKS-AGENTS.md §3.1): one per node its tool pins link to, described to the model by a
JSON schema built from that node's block (or sub-agent) inputs, and the bookkeeping of a tool-calling conversation
(which calls still wait for their result)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentflow.pins import base_name, is_dynamic

TOOL_PIN_PREFIX = "tools_^_"
TOOL_PIN_SEPARATOR = "_~_"
MAX_TOOL_NAME = 64
HIDDEN_DEFAULTS = frozenset({"credentials", "graph_id", "graph_version", "user_id", "input_schema", "output_schema"})


def cleanup(name: str) -> str:
    """AutoGPT's tool and parameter names: lower case, anything outside [a-zA-Z0-9_-] becomes `_`."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name).lower()


def tool_pin(sink_id: str, sink_name: str) -> str:
    return f"{TOOL_PIN_PREFIX}{sink_id}{TOOL_PIN_SEPARATOR}{sink_name}"


@dataclass(frozen=True)
class ToolLink:
    pin: str  # the link's source_name: the pin an argument is yielded on
    sink_name: str


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    sink_id: str
    links: list[ToolLink] = field(default_factory=list)
    field_mapping: dict[str, str] = field(default_factory=dict)  # cleaned parameter -> the sink's pin

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))


def _dynamic_schema(sink_name: str) -> dict[str, Any]:
    base = base_name(sink_name)
    key = sink_name[len(base) + 3 :]
    return {"type": "string", "description": f"Dictionary field '{key}' for base field '{base}' ({base}['{key}'])"}


def _inline(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """A property schema with a top-level `$ref` into the model's `$defs` resolved (models send it whole)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.rsplit("/", 1)[1], {})
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return {k: v for k, v in schema.items() if k not in ("advanced", "llm_model")}


def _preconfigured(input_default: Mapping[str, Any], linked: set[str]) -> str:
    shown = []
    for key, value in input_default.items():
        if key in linked or key in HIDDEN_DEFAULTS or key.endswith("_credentials") or value in (None, "", {}, []):
            continue
        text = json.dumps(value, default=str)
        shown.append(f"{key}={text if len(text) <= 100 else text[:80] + '...<truncated>'}")
    return f" [Pre-configured: {', '.join(shown)}]" if shown else ""


def _block_tool(name: str, sink: Any, block: Any, names: list[str]) -> tuple[str, dict[str, Any], dict[str, str]]:
    schema = block.input_schema()
    props, defs = schema.get("properties", {}), schema.get("$defs", {})
    required_fields = block.required_inputs()
    properties: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    required: set[str] = set()
    for sink_name in names:
        key = cleanup(sink_name)
        mapping[key] = sink_name
        if is_dynamic(sink_name):
            properties[key] = _dynamic_schema(sink_name)
        elif sink_name in props:
            properties[key] = _inline(props[sink_name], defs)
        else:
            properties[key] = {"type": "string", "description": f"Value for {sink_name}"}
        if base_name(sink_name) in required_fields:
            required.add(key)
    parameters = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": sorted(required),
    }
    return block.description, parameters, mapping


def _agent_tool(sink: Any, names: list[str]) -> tuple[str, dict[str, Any], dict[str, str]]:
    schema = sink.input_default.get("input_schema") or {}
    props = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    properties: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for sink_name in names:
        key = cleanup(sink_name)
        mapping[key] = sink_name
        about = props.get(sink_name, {}) if isinstance(props, Mapping) else {}
        entry: dict[str, Any] = {
            "type": "string",
            "description": about.get("description") or f"The {sink_name} of the tool",
        }
        if "default" in about:
            entry["default"] = json.dumps(about["default"])
        properties[key] = entry
    required = [cleanup(n) for n in schema.get("required", []) if n in names] if isinstance(schema, Mapping) else []
    parameters = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": sorted(required),
    }
    description = str(sink.input_default.get("description") or sink.input_default.get("agent_name") or "A sub-agent")
    return description, parameters, mapping


def build_tools(graph: Any, node_id: str) -> list[Tool]:
    """The tools of the Orchestrator node `node_id` in `graph` (a ValidGraph), in link order."""
    by_sink: dict[str, list[ToolLink]] = {}
    for _, link in graph.links_from[node_id]:
        if link.source_name.startswith(TOOL_PIN_PREFIX):
            by_sink.setdefault(link.sink_id, []).append(ToolLink(link.source_name, link.sink_name))
    tools: list[Tool] = []
    taken: set[str] = set()
    for sink_id, links in by_sink.items():
        sink, block = graph.nodes[sink_id], graph.block(sink_id)
        names = list(dict.fromkeys(link.sink_name for link in links))
        is_agent = block.block_type.value == "Agent"
        label = (
            sink.metadata.get("customized_name")
            or (sink.input_default.get("agent_name") if is_agent else None)
            or block.name()
        )
        name = cleanup(str(label))[:MAX_TOOL_NAME]
        if is_agent:
            description, parameters, mapping = _agent_tool(sink, names)
        else:
            description, parameters, mapping = _block_tool(name, sink, block, names)
        if name in taken:  # duplicates get _1, _2, ... and say how they differ
            number = 1
            while f"{name[: MAX_TOOL_NAME - 1 - len(str(number))]}_{number}" in taken:
                number += 1
            name = f"{name[: MAX_TOOL_NAME - 1 - len(str(number))]}_{number}"
            description += _preconfigured(sink.input_default, set(names))
        taken.add(name)
        tools.append(Tool(name, description, parameters, sink_id, links, mapping))
    return tools


def requested_ids(entry: Mapping[str, Any]) -> list[str]:
    ids = [str(c.get("id")) for c in entry.get("tool_calls") or [] if isinstance(c, Mapping) and c.get("id")]
    content = entry.get("content")
    if entry.get("role") == "assistant" and isinstance(content, list):
        ids += [str(b["id"]) for b in content if isinstance(b, Mapping) and b.get("type") == "tool_use" and b.get("id")]
    return ids


def answered_ids(entry: Mapping[str, Any]) -> list[str]:
    if entry.get("role") == "tool" and entry.get("tool_call_id"):
        return [str(entry["tool_call_id"])]
    content = entry.get("content")
    if entry.get("role") == "user" and isinstance(content, list):
        return [
            str(b["tool_use_id"])
            for b in content
            if isinstance(b, Mapping) and b.get("type") == "tool_result" and b.get("tool_use_id")
        ]
    return []


def pending_calls(history: Sequence[Any]) -> list[str]:
    """Tool call ids the model made that no result answers yet, oldest first."""
    requested: list[str] = []
    answered: Counter[str] = Counter()
    for entry in history:
        if isinstance(entry, Mapping):
            requested += requested_ids(entry)
            answered.update(answered_ids(entry))
    pending = []
    for call_id in requested:
        if answered[call_id] > 0:
            answered[call_id] -= 1
        else:
            pending.append(call_id)
    return pending


def tool_result_message(call_id: str, content: str) -> dict[str, Any]:
    """A tool's result as the next history entry: Anthropic's shape for its `toolu_` ids, OpenAI's otherwise."""
    if call_id.startswith("toolu_"):
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": content}]}
    return {"role": "tool", "tool_call_id": call_id, "content": content}
