"""The block catalogue and graph routes: create, list, read, update and delete graphs, their versions and the active
version (README.md, "The HTTP API")."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from agentflow.api import models as m
from agentflow.api.common import Deps, _check_id, _ok, created, ok
from agentflow.api.errors import not_found
from agentflow.blocks.registry import all_blocks
from agentflow.exports import check_export
from agentflow.graph import validate_graph
from agentflow.store import GraphHead


def router(deps: Deps) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.get("/blocks", summary="Every block with its input and output JSON schemas", responses=ok(m.BlockList))
    def list_blocks() -> m.BlockList:
        return m.BlockList(blocks=[m.BlockInfo(**b.info()) for b in all_blocks()])

    _graph_routes(r, deps)
    _version_routes(r, deps)
    return r


def graph_out(deps: Deps, head: GraphHead, version: int | None = None) -> m.GraphOut:
    shown = version or head.active_version
    if shown > head.latest_version:
        raise not_found("graph version", f"{head.graph_id}@{shown}")
    graph = deps.load(head.graph_id, shown)
    return m.GraphOut(
        graph_id=head.graph_id,
        name=head.name,
        active_version=head.active_version,
        latest_version=head.latest_version,
        created_at=head.created_at,
        updated_at=head.updated_at,
        version=shown,
        graph=json.loads(graph.graph.to_json()),
        input_names=graph.input_names,
        required_inputs=graph.required_input_names,
        output_names=graph.output_names,
    )


def _graph_routes(r: APIGatewayRouter, deps: Deps) -> None:
    store = deps.store

    @r.post(
        "/graphs/validate",
        summary="Check an AutoGPT export (its sub_graphs included) without storing or running it",
        responses=ok(m.ValidationOut),
    )
    def validate_export(document: Annotated[dict[str, Any], Body()]) -> m.ValidationOut:
        problems = check_export(document)
        return m.ValidationOut(valid=not problems, problems=[m.ExportProblemOut(**p.to_dict()) for p in problems])

    @r.post("/graphs", summary="Create a graph (version 1)", responses=created(m.GraphOut))
    def create_graph(graph: m.GraphIn) -> Response[m.GraphOut]:
        # with its sub_graphs, each stored as a graph of the user (README, "Sub-graphs")
        graph_id, _ = deps.engine.import_export(deps.user(), graph.model_dump(exclude_none=True))
        return _ok(graph_out(deps, deps.graph_head(graph_id)), 201)

    @r.get("/graphs", summary="Your graphs", responses=ok(m.GraphList))
    def list_graphs() -> m.GraphList:
        heads = sorted(store.list_graph_heads(deps.user()), key=lambda h: h.created_at or "", reverse=True)
        return m.GraphList(
            graphs=[
                m.GraphSummary(
                    graph_id=h.graph_id,
                    name=h.name,
                    active_version=h.active_version,
                    latest_version=h.latest_version,
                    created_at=h.created_at,
                    updated_at=h.updated_at,
                )
                for h in heads
            ]
        )

    @r.get("/graphs/<graph_id>", summary="A graph (its active version, or ?version=N)", responses=ok(m.GraphOut))
    def get_graph(graph_id: str, version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> m.GraphOut:
        return graph_out(deps, deps.graph_head(graph_id), version)

    @r.put("/graphs/<graph_id>", summary="Save a new version of a graph and make it active", responses=ok(m.GraphOut))
    def update_graph(graph_id: str, graph: m.GraphIn) -> m.GraphOut:
        deps.graph_head(graph_id)
        valid = validate_graph(graph.model_dump(exclude_none=True))
        deps.engine.register_graph(deps.user(), valid, graph_id=graph_id)
        return graph_out(deps, deps.graph_head(graph_id))

    @r.delete(
        "/graphs/<graph_id>",
        summary="Delete a graph (its executions stay readable; runs in flight finish)",
        responses=ok(m.Deleted),
    )
    def delete_graph(graph_id: str) -> m.Deleted:
        _check_id("graph", graph_id)
        if not store.delete_graph(deps.user(), graph_id):
            raise not_found("graph", graph_id)
        return m.Deleted(graph_id=graph_id, deleted=True)


def _version_routes(r: APIGatewayRouter, deps: Deps) -> None:
    @r.get("/graphs/<graph_id>/versions", summary="The versions of a graph", responses=ok(m.VersionList))
    def list_versions(graph_id: str) -> m.VersionList:
        head = deps.graph_head(graph_id)
        versions = deps.store.list_graph_versions(deps.user(), graph_id)
        return m.VersionList(
            graph_id=graph_id,
            versions=[
                m.VersionInfo(
                    version=v.version,
                    created_at=v.created_at,
                    active=v.version == head.active_version,
                )
                for v in versions
            ],
        )

    @r.put(
        "/graphs/<graph_id>/versions/active", summary="Choose which version runs by default", responses=ok(m.GraphOut)
    )
    def set_active(graph_id: str, body: m.ActiveVersionIn) -> m.GraphOut:
        deps.graph_head(graph_id)
        if not deps.store.set_active_version(deps.user(), graph_id, body.version).won:
            raise not_found("graph version", f"{graph_id}@{body.version}")
        return graph_out(deps, deps.graph_head(graph_id))
