"""Routing for the local API Gateway: the resource tree of the template's `Api` events, and request matching.

Literal segments beat `{param}` segments, which beat `{proxy+}` (one or more segments); among the resources
matching the whole path the most specific one wins. Trailing slashes are ignored for matching. Paths that API
Gateway would refuse (a greedy parameter not last, two sibling parameters of different names, two functions on
one method) fail with TemplateError when the gateway is made.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from agentflow_local.template import ApiRoute, AppTemplate, FunctionSpec, TemplateError

_LITERAL, _PARAM, _GREEDY = 0, 1, 2  # ranks: a lower rank is more specific


@dataclass(frozen=True)
class _Segment:
    kind: int
    value: str  # the literal text, or the parameter's name


@dataclass
class _Resource:
    path: str  # the template path, trailing slash removed
    segments: tuple[_Segment, ...]
    resource_id: str
    methods: dict[str, tuple[FunctionSpec, ApiRoute]] = field(default_factory=dict)

    def match(self, parts: Sequence[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """(rank, decoded path parameters) when this resource matches the raw path segments, else None."""
        params: dict[str, str] = {}
        rank: list[int] = []
        for i, segment in enumerate(self.segments):
            if segment.kind == _GREEDY:
                rest = parts[i:]
                if not rest or not "".join(rest):
                    return None
                params[segment.value] = unquote("/".join(rest))
                rank.append(_GREEDY)
                return tuple(rank), params
            if i >= len(parts):
                return None
            part = parts[i]
            if segment.kind == _LITERAL:
                if unquote(part) != segment.value:
                    return None
            elif not part:  # a parameter never matches an empty segment
                return None
            else:
                params[segment.value] = unquote(part)
            rank.append(segment.kind)
        if len(parts) != len(self.segments):
            return None
        return tuple(rank), params


def _parse_path(path: str, where: str) -> tuple[str, tuple[_Segment, ...]]:
    if not path.startswith("/"):
        raise TemplateError(f"{where}: an API path must start with '/', not {path!r}")
    normalized = path.rstrip("/") or "/"
    segments: list[_Segment] = []
    raw_parts = [p for p in normalized.split("/")[1:] if p] if normalized != "/" else []
    for i, part in enumerate(raw_parts):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
                raise TemplateError(f"{where}: bad path parameter {part!r} in {path!r}")
            if greedy and i != len(raw_parts) - 1:
                raise TemplateError(f"{where}: a greedy parameter {part!r} must be the last segment of {path!r}")
            segments.append(_Segment(_GREEDY if greedy else _PARAM, name))
        elif "{" in part or "}" in part:
            raise TemplateError(f"{where}: a path parameter must fill a whole segment, not {part!r} in {path!r}")
        else:
            segments.append(_Segment(_LITERAL, part))
    return normalized, tuple(segments)


def _shape(segments: Sequence[_Segment]) -> tuple[str, ...]:
    """The path with parameter names erased: API Gateway refuses two sibling parameters of different names."""
    return tuple(s.value if s.kind == _LITERAL else ("{}" if s.kind == _PARAM else "{+}") for s in segments)


def _build_resources(template: AppTemplate) -> list[_Resource]:
    by_shape: dict[tuple[str, ...], _Resource] = {}
    for spec, route in template.api_routes():
        where = f"{spec.logical_id}.{route.name}"
        path, segments = _parse_path(route.path, where)
        resource = by_shape.get(_shape(segments))
        if resource is None:
            resource_id = hashlib.sha1(path.encode("utf-8")).hexdigest()[:6]
            resource = by_shape[_shape(segments)] = _Resource(path, segments, resource_id)
        elif resource.path != path:
            raise TemplateError(f"{where}: {path!r} conflicts with {resource.path!r} (same place, other names)")
        if route.method in resource.methods:
            other, other_route = resource.methods[route.method]
            raise TemplateError(
                f"{where}: {route.method} {path} is already served by {other.logical_id}.{other_route.name}"
            )
        resource.methods[route.method] = (spec, route)
    return list(by_shape.values())


def _route(resources: Sequence[_Resource], path: str) -> tuple[_Resource, dict[str, str]] | None:
    """The most specific resource matching a request path (stage removed), with its decoded path parameters."""
    trimmed = path.rstrip("/")
    parts = trimmed.split("/")[1:] if trimmed else []
    best: tuple[tuple[int, ...], _Resource, dict[str, str]] | None = None
    for resource in resources:
        found = resource.match(parts)
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], resource, found[1])
    return None if best is None else (best[1], best[2])


def _by_specificity(resources: Sequence[_Resource]) -> list[_Resource]:
    """The resources, most specific paths first."""
    return sorted(resources, key=lambda r: [s.kind for s in r.segments] + [len(r.segments)])
