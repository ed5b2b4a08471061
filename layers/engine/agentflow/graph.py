"""Graphs in the AutoGPT export format, and their validation (docs/architecture.md, "The layers").

Validation reports every problem at once, each naming the node and the pin, so a user fixes a graph in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentflow.blocks.execution import input_keys
from agentflow.blocks.registry import get_block
from agentflow.blocks.sdk import Block, BlockType
from agentflow.config import MAX_CONCURRENT_RUNS
from agentflow.errors import InvalidInput
from agentflow.llm.usage import Budget
from agentflow.pins import base_name
from agentflow.retries import ResolvedPolicy, RetryPolicy, parse_policy

MAX_NODES = 500
MAX_LINKS = 2_000
MAX_GRAPH_BYTES = 300_000  # a graph version is one DynamoDB item (400 KB) with room for its keys
DEFAULT_NODE_EXECUTION_LIMIT = 1_000
# A fan-in's direct deliveries record nothing (docs/architecture.md, "Direct deliveries"); a sink that is sent values
# the recorded way keeps ~20 bytes per delivery on one item, and one that would outgrow 400 KB fails its run loudly.
MAX_NODE_EXECUTION_LIMIT = 100_000
FORBIDDEN_ID_CHARS = ("#", "/")  # both are separators in DynamoDB sort keys and delivery ids
MAX_NODE_TIMEOUT_SECONDS = 900.0  # Lambda's longest timeout; the executor caps it to its own function's
MAX_RUN_TIMEOUT_SECONDS = 30 * 86_400.0


class Link(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    source_id: str
    sink_id: str
    source_name: str
    sink_name: str
    is_static: bool = False


class Node(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    block_id: str
    input_default: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Graph(BaseModel):
    """A graph as users write and export it. `block_id` may be a UUID or a block name until validated."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    version: int | None = None
    name: str = ""
    description: str = ""
    nodes: list[Node] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    node_execution_limit: int = DEFAULT_NODE_EXECUTION_LIMIT
    retry_policy: dict[str, Any] | None = None  # every node's, unless its metadata sets its own (README, Retries)
    timeout_seconds: float | None = None  # a run still going after this long fails (None: no limit)
    budget: Any = None  # LLM tokens and/or US dollars per run (README, "Costs and budgets"); checked by Budget
    # runs of this graph (per user) going at once; None: AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH. Any, so that a
    # wrong value gets the message of `_size_problems` on every path (API, CLI, sub-graphs of an export)
    max_concurrent_runs: Any = None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph or its inputs: where (node, pin) and what."""

    message: str
    node_id: str | None = None
    pin: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.node_id is not None:
            where = f"node {self.node_id!r}"
            if self.pin is not None:
                where += f", pin {self.pin!r}"
            where += ": "
        elif self.pin is not None:
            where = f"input {self.pin!r}: "
        return where + self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"node_id": self.node_id, "pin": self.pin, "message": self.message}


class GraphValidationError(InvalidInput):
    def __init__(self, problems: list[Problem], what: str = "graph") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {what} ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{lines}")


class ValidGraph:
    """A validated graph with the indexes the executor needs. Immutable once built."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes: dict[str, Node] = {n.id: n for n in graph.nodes}
        self.blocks: dict[str, type[Block]] = {}
        for node in graph.nodes:
            block = get_block(node.block_id)
            assert block is not None, "ValidGraph needs a validated graph"
            self.blocks[node.id] = block

    @property
    def node_execution_limit(self) -> int:
        return self.graph.node_execution_limit

    @property
    def max_concurrent_runs(self) -> int | None:
        """The graph's own cap on its runs going at once (README, "Concurrency limits"); None: the setting's."""
        cap = self.graph.max_concurrent_runs
        return cap if isinstance(cap, int) else None

    def retry_policy(self, node_id: str, default: ResolvedPolicy) -> ResolvedPolicy:
        """The node's metadata policy over the graph's over `default` (the settings')."""
        policy = default
        if self.graph.retry_policy is not None:
            policy = RetryPolicy.model_validate(self.graph.retry_policy).over(policy)
        own = self.nodes[node_id].metadata.get("retry_policy")
        if own is not None:
            policy = RetryPolicy.model_validate(own).over(policy)
        return policy

    @cached_property
    def budget(self) -> Budget | None:
        return Budget.parse(self.graph.budget)

    def node_timeout(self, node_id: str) -> float | None:
        """The node's own time limit per attempt (metadata `timeout_seconds`), else its block's default."""
        own = self.nodes[node_id].metadata.get("timeout_seconds")
        return float(own) if own is not None else self.blocks[node_id].timeout_seconds

    @cached_property
    def links_from(self) -> dict[str, list[tuple[int, Link]]]:
        """Links leaving each node, with their index in the graph (the index is part of delivery ids)."""
        out: dict[str, list[tuple[int, Link]]] = {n: [] for n in self.nodes}
        for index, link in enumerate(self.graph.links):
            out[link.source_id].append((index, link))
        return out

    @cached_property
    def links_into(self) -> dict[str, list[Link]]:
        into: dict[str, list[Link]] = {n: [] for n in self.nodes}
        for link in self.graph.links:
            into[link.sink_id].append(link)
        return into

    @cached_property
    def static_pins(self) -> dict[str, frozenset[str]]:
        """Per node, the input pins fed by at least one static link."""
        return {
            node_id: frozenset(link.sink_name for link in links if link.is_static)
            for node_id, links in self.links_into.items()
        }

    @cached_property
    def linked_pins(self) -> dict[str, frozenset[str]]:
        return {node_id: frozenset(link.sink_name for link in links) for node_id, links in self.links_into.items()}

    @cached_property
    def sole_source_sinks(self) -> frozenset[str]:
        """Nodes whose slot 0 is kept for their one source's first execution, which creates it without taking a
        number (docs/architecture.md, "Direct deliveries"): fed by exactly one link, not static and not from
        themselves, and not started by the run (which creates a starting node's slot 0)."""
        starting = self.starting_ids
        return frozenset(
            node_id
            for node_id, links in self.links_into.items()
            if len(links) == 1 and not links[0].is_static and links[0].source_id != node_id and node_id not in starting
        )

    @cached_property
    def output_carriers(self) -> frozenset[str]:
        """The nodes whose items may carry an output node's execution, having run it (executor/outputs.py): the one
        source of each output node that has one."""
        outputs = {n.id for n in self.output_nodes} & self.sole_source_sinks
        return frozenset(self.links_into[n][0].source_id for n in outputs)

    @cached_property
    def inputs_run_at_start(self) -> frozenset[str]:
        """Input nodes the run's start may run itself, creating the slot 0 of each node they feed with all its
        values (docs/architecture.md, "Inputs run at the start"): pure input blocks no link feeds, linked only to
        nodes that are not started by the run and that no other node feeds, so that each of those runs once."""
        starting = self.starting_ids
        chosen = {
            n.id
            for n in self.input_nodes
            if not self.links_into[n.id] and self.links_from[n.id] and self.blocks[n.id].pure
        }
        while True:  # a node dropped may drop the sinks it shares with others: until nothing changes
            sinks = {link.sink_id for node_id in chosen for _, link in self.links_from[node_id]}
            shared = {
                sink
                for sink in sinks
                if sink in starting or any(link.source_id not in chosen for link in self.links_into[sink])
            }
            dropped = {n for n in chosen if any(link.sink_id in shared for _, link in self.links_from[n])}
            if not dropped:
                return frozenset(chosen)
            chosen -= dropped

    @cached_property
    def first_value_links(self) -> frozenset[int]:
        """Links whose value, when the one execution of their source sends them only one, goes straight into slot 0
        of their sink, with no delivery record (docs/architecture.md, "Joins fed once"): from a node that runs once
        (started by the run with no link into it, or fed by inputs run at the start alone), not static, into a pin
        no other link feeds, of a node that neither the run starts nor keeps slot 0 for one source."""
        starting = self.starting_ids
        fed_at_start = {link.sink_id for n in self.inputs_run_at_start for _, link in self.links_from[n]}
        once = {n for n in starting if not self.links_into[n]} | fed_at_start
        return frozenset(
            index
            for index, link in enumerate(self.graph.links)
            if link.source_id in once
            and not link.is_static
            and link.sink_id not in starting
            and link.sink_id not in self.sole_source_sinks
            and sum(1 for other in self.links_into[link.sink_id] if other.sink_name == link.sink_name) == 1
        )

    def first_counted_slot(self, node_id: str) -> int:
        """Where a node's pin counters start: 1 for a sole-source sink (its slot 0 is taken otherwise), else 0."""
        return 1 if node_id in self.sole_source_sinks else 0

    def block(self, node_id: str) -> type[Block]:
        return self.blocks[node_id]

    def error_is_handled(self, node_id: str) -> bool:
        """A node's failure is handled when its `error` pin is linked somewhere."""
        return any(base_name(link.source_name) == "error" for _, link in self.links_from[node_id])

    @cached_property
    def input_nodes(self) -> list[Node]:
        return [n for n in self.graph.nodes if self.blocks[n.id].block_type is BlockType.INPUT]

    @cached_property
    def output_nodes(self) -> list[Node]:
        return [n for n in self.graph.nodes if self.blocks[n.id].block_type is BlockType.OUTPUT]

    @cached_property
    def input_names(self) -> list[str]:
        return [str(n.input_default.get("name")) for n in self.input_nodes]

    @cached_property
    def output_names(self) -> list[str]:
        return sorted({str(n.input_default.get("name")) for n in self.output_nodes})

    @cached_property
    def required_input_names(self) -> list[str]:
        """Graph inputs with no default value (AutoGPT: input nodes whose `value` is None)."""
        required = []
        for node in self.input_nodes:
            block = self.blocks[node.id]
            value_field = block.Input.model_fields.get("value")
            has_default = value_field is not None and value_field.get_default() is not None
            if node.input_default.get("value") is None and not has_default:
                required.append(str(node.input_default.get("name")))
        return required

    @cached_property
    def trigger_node(self) -> Node | None:
        """The webhook trigger node, if the graph has one: such a graph starts only from its webhook."""
        return next((n for n in self.graph.nodes if self.blocks[n.id].block_type is BlockType.WEBHOOK), None)

    @cached_property
    def starting_ids(self) -> frozenset[str]:
        return frozenset(n.id for n in self.starting_nodes)

    @cached_property
    def starting_nodes(self) -> list[Node]:
        """Nodes that run when the execution starts: input blocks and nodes no link feeds (notes never run)."""
        return [
            n
            for n in self.graph.nodes
            if self.blocks[n.id].block_type is not BlockType.NOTE
            and (self.blocks[n.id].block_type is BlockType.INPUT or not self.links_into[n.id])
        ]


def parse_graph(data: Any) -> Graph:
    """Parse a graph document (dict or JSON text) in the AutoGPT export format; structural errors all at once."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise GraphValidationError([Problem(f"not valid JSON: {exc}")]) from exc
    if not isinstance(data, Mapping):
        raise GraphValidationError([Problem("a graph must be a JSON object with 'nodes' and 'links'")])
    try:
        return Graph.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            node_id = None
            if len(loc) >= 2 and loc[0] in ("nodes", "links") and isinstance(loc[1], int):
                items = data.get(str(loc[0])) or []
                item = items[loc[1]] if loc[1] < len(items) else None
                if isinstance(item, Mapping) and loc[0] == "nodes":
                    node_id = str(item.get("id")) if item.get("id") is not None else f"#{loc[1]}"
            where = ".".join(str(p) for p in loc)
            problems.append(Problem(f"{where}: {err['msg']}", node_id=node_id))
        raise GraphValidationError(problems) from exc


def validate_graph(data: Any) -> ValidGraph:
    """Parse and validate a graph; on failure raise GraphValidationError listing every problem."""
    graph = parse_graph(data)
    problems = _size_problems(graph)
    blocks, seen = _resolve_blocks(graph, problems)
    linked = _check_links(graph, blocks, seen, problems)
    _check_required_inputs(graph, blocks, linked, problems)
    _check_limits(graph, problems)
    triggers = [n.id for n in graph.nodes if n.id in blocks and blocks[n.id].block_type is BlockType.WEBHOOK]
    for extra in triggers[1:]:
        problems.append(Problem(f"a graph holds at most one trigger block (also node {triggers[0]!r})", extra))
    if problems:
        raise GraphValidationError(problems)
    valid = ValidGraph(graph)
    if len(valid.starting_nodes) > graph.node_execution_limit:
        raise GraphValidationError([Problem(f"{len(valid.starting_nodes)} starting nodes exceed node_execution_limit")])
    return valid


def _size_problems(graph: Graph) -> list[Problem]:
    problems: list[Problem] = []
    if not graph.nodes:
        problems.append(Problem("a graph needs at least one node"))
    if len(graph.nodes) > MAX_NODES:
        problems.append(Problem(f"{len(graph.nodes)} nodes; the limit is {MAX_NODES}"))
    if len(graph.links) > MAX_LINKS:
        problems.append(Problem(f"{len(graph.links)} links; the limit is {MAX_LINKS}"))
    size = len(graph.to_json().encode())
    if size > MAX_GRAPH_BYTES:
        problems.append(Problem(f"the graph is {size} bytes; the limit is {MAX_GRAPH_BYTES}"))
    if not 1 <= graph.node_execution_limit <= MAX_NODE_EXECUTION_LIMIT:
        problems.append(Problem(f"node_execution_limit must be between 1 and {MAX_NODE_EXECUTION_LIMIT}"))
    cap = graph.max_concurrent_runs
    if cap is not None and not (isinstance(cap, int) and not isinstance(cap, bool) and 1 <= cap <= MAX_CONCURRENT_RUNS):
        shown = repr(cap) if len(repr(cap)) <= 40 else repr(cap)[:40] + "..."
        problems.append(
            Problem(f"max_concurrent_runs must be a whole number from 1 to {MAX_CONCURRENT_RUNS}, got {shown}")
        )
    return problems


def _positive(value: Any, maximum: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= maximum


def _check_limits(graph: Graph, problems: list[Problem]) -> None:
    """Retry policies and timeouts, of the graph and of each node's metadata (README, "Retries and timeouts")."""
    if graph.retry_policy is not None:
        try:
            parse_policy(graph.retry_policy, "retry_policy")
        except InvalidInput as exc:
            problems.append(Problem(str(exc)))
    try:
        Budget.parse(graph.budget)
    except InvalidInput as exc:
        problems.append(Problem(str(exc)))
    if graph.timeout_seconds is not None and not _positive(graph.timeout_seconds, MAX_RUN_TIMEOUT_SECONDS):
        problems.append(Problem(f"timeout_seconds must be a number of seconds in (0, {MAX_RUN_TIMEOUT_SECONDS:g}]"))
    for node in graph.nodes:
        if node.metadata.get("retry_policy") is not None:
            try:
                parse_policy(node.metadata["retry_policy"], "metadata.retry_policy")
            except InvalidInput as exc:
                problems.append(Problem(str(exc), node.id, "metadata.retry_policy"))
        timeout = node.metadata.get("timeout_seconds")
        if timeout is not None and not _positive(timeout, MAX_NODE_TIMEOUT_SECONDS):
            message = f"metadata.timeout_seconds must be a number of seconds in (0, {MAX_NODE_TIMEOUT_SECONDS:g}]"
            problems.append(Problem(message, node.id, "metadata.timeout_seconds"))


def _resolve_blocks(graph: Graph, problems: list[Problem]) -> tuple[dict[str, type[Block]], set[str]]:
    """Each node's block (a block name resolves to its UUID), and the node ids seen."""
    blocks: dict[str, type[Block]] = {}
    seen: set[str] = set()
    for node in graph.nodes:
        if node.id in seen:
            problems.append(Problem("duplicate node id", node_id=node.id))
        seen.add(node.id)
        if not node.id or any(c in node.id for c in FORBIDDEN_ID_CHARS):
            problems.append(Problem("a node id must be non-empty and contain neither '#' nor '/'", node_id=node.id))
        block = get_block(node.block_id)
        if block is None:
            problems.append(Problem(f"unknown block {node.block_id!r}", node_id=node.id, pin="block_id"))
            continue
        node.block_id = block.id
        blocks[node.id] = block
        for pin, message in block.node_problems(node.input_default):
            problems.append(Problem(message, node_id=node.id, pin=pin))
    return blocks, seen


def _check_links(
    graph: Graph, blocks: dict[str, type[Block]], seen: set[str], problems: list[Problem]
) -> dict[str, set[str]]:
    """Every link joins existing pins; returns the linked input pins of each node."""
    linked: dict[str, set[str]] = {n.id: set() for n in graph.nodes}
    defaults = {n.id: n.input_default for n in graph.nodes}
    for index, link in enumerate(graph.links):
        label = link.id or f"links[{index}]"
        source, sink = blocks.get(link.source_id), blocks.get(link.sink_id)
        if link.source_id not in seen:
            problems.append(Problem(f"link {label} starts at a missing node", node_id=link.source_id))
        elif source is not None and not source.accepts_output_pin(
            base_name(link.source_name), defaults[link.source_id]
        ):
            allowed = ", ".join(sorted(source.node_output_names(defaults[link.source_id])))
            message = f"link {label}: {source.name()} has no output {link.source_name!r} (outputs: {allowed})"
            problems.append(Problem(message, node_id=link.source_id, pin=link.source_name))
        if link.sink_id not in seen:
            problems.append(Problem(f"link {label} ends at a missing node", node_id=link.sink_id))
        elif sink is not None and base_name(link.sink_name) not in (
            inputs := sink.node_input_names(defaults[link.sink_id])
        ):
            allowed = ", ".join(sorted(inputs))
            message = f"link {label}: {sink.name()} has no input {link.sink_name!r} (inputs: {allowed})"
            problems.append(Problem(message, node_id=link.sink_id, pin=link.sink_name))
        else:
            linked[link.sink_id].add(base_name(link.sink_name))
        if source is not None:
            link.source_name = source.link_source_name(link.source_name, link.sink_id, link.sink_name)
        if source is not None and source.static_output:
            link.is_static = True  # AutoGPT forces links from static-output blocks static on save
    return linked


def _check_required_inputs(
    graph: Graph, blocks: dict[str, type[Block]], linked: dict[str, set[str]], problems: list[Problem]
) -> None:
    """Every required input has a default, a link or a graph input; graph input names are unique."""
    input_names: dict[str, str] = {}
    for node in graph.nodes:
        block = blocks.get(node.id)
        if block is None:
            continue
        given = {base_name(k) for k, v in node.input_default.items() if v is not None}
        for pin in sorted(block.required_inputs()):
            if pin in given or pin in linked[node.id]:
                continue
            if given.intersection(input_keys(block.Input.model_fields[pin], pin)):
                continue  # given under a former name of the pin (its validation alias)
            if block.block_type is BlockType.INPUT and pin == "value":
                continue  # filled by the graph input of the same name
            if block.block_type is BlockType.WEBHOOK and pin == "payload":
                continue  # filled by the webhook
            problems.append(Problem("required input has no default, link or graph input", node.id, pin))
        name = node.input_default.get("name")
        if block.block_type is BlockType.INPUT and isinstance(name, str) and name:
            if name in input_names:
                message = f"duplicate graph input name {name!r} (also node {input_names[name]!r})"
                problems.append(Problem(message, node.id, "name"))
            input_names[name] = node.id


def validate_inputs(graph: ValidGraph, inputs: Mapping[str, Any]) -> None:
    """Check a run's inputs against the graph's input nodes; raise GraphValidationError naming each problem."""
    problems: list[Problem] = []
    known = set(graph.input_names)
    for name in inputs:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems.append(Problem(f"unknown graph input (the graph's inputs: {listed})", pin=name))
    for name in graph.required_input_names:
        if inputs.get(name) is None:
            problems.append(Problem("missing required graph input", pin=name))
    if problems:
        raise GraphValidationError(problems, what="inputs")
