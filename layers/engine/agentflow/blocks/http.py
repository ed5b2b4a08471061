"""AutoGPT's two HTTP blocks (README, "Built-in blocks"), on the SSRF-guarded client of `agentflow.net`.

Same UUIDs, pins, defaults and yields as AutoGPT: 2xx -> `response`, 4xx -> `client_error`, anything else ->
`server_error`. One difference, this project's retry rule: 429, 502, 503 and 504 raise `RetryableError` (with the
server's `Retry-After`) so the engine tries the node again, and only on the last attempt yield their pin as AutoGPT
does; timeouts and connection failures are always retryable. Files may be data: URIs or http(s) URLs (fetched
through the same guard); AutoGPT's stored files and paths have no store here, so they fail the node.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
from collections.abc import Collection, Iterator, Mapping
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from pydantic import Field

from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockError,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
)
from agentflow.credentials.models import CredentialsField, CredentialsMetaInput, CredentialType, HostScopedCredentials
from agentflow.errors import RetryableError
from agentflow.net.client import Body, HttpResponse, send_request

__all__ = ["HttpMethod", "SendAuthenticatedWebRequestBlock", "SendWebRequestBlock"]

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
FILES_WITH_JSON = (
    "json_format=True cannot be combined with file uploads; set json_format=False and put form fields in `body`."
)


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    OPTIONS = "OPTIONS"
    HEAD = "HEAD"


# -- files -------------------------------------------------------------------------------------------------

FilePart = tuple[str, str, bytes, str]  # (form field, file name, content, MIME type)


def _data_uri(ref: str, field: str) -> FilePart:
    header, comma, payload = ref[len("data:") :].partition(",")
    if not comma:
        raise BlockError("files: a data: URI needs a ',' before its data")
    params = header.split(";")
    mime = params[0].strip() or "text/plain"
    try:
        if any(p.strip().lower() == "base64" for p in params[1:]):
            content = base64.b64decode(payload, validate=True)
        else:
            content = unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise BlockError("files: a data: URI has invalid base64 data") from None
    # AutoGPT names a stored data URI with a fresh UUID; a content hash is as unique and the same on every retry.
    name = hashlib.sha256(content).hexdigest()[:16] + (mimetypes.guess_extension(mime) or "")
    return field, name, content, mime


def _downloaded(ref: str, field: str, context: BlockContext) -> FilePart:
    response = send_request("GET", ref, context.http)
    if not 200 <= response.status < 300:
        if response.status in RETRYABLE_STATUSES and not context.last_attempt:
            raise RetryableError(f"files: {_answered(response)}", retry_after=response.retry_after())
        raise BlockError(f"files: cannot fetch the file, {_answered(response)}")
    name = PurePosixPath(urlsplit(response.url).path).name or "file"
    served = response.headers.get("content-type", "").split(";")[0].strip()
    mime = mimetypes.guess_type(name)[0] or served or "application/octet-stream"
    return field, name, response.content, mime


def _file_parts(files: list[str], field: str, context: BlockContext) -> list[FilePart]:
    parts: list[FilePart] = []
    for ref in files:
        text = ref.strip()
        if text.startswith("data:"):
            parts.append(_data_uri(text, field))
        elif text.lower().startswith(("http://", "https://")):
            parts.append(_downloaded(text, field, context))
        else:
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise BlockError(
                f"files: {shown!r} is neither a data: URI nor an http(s) URL (stored files and paths are not supported)"
            )
    return parts


# -- the request -------------------------------------------------------------------------------------------


def _answered(response: HttpResponse) -> str:
    return f"{response.method} {response.origin} answered {response.status}"


def _body(data: SendWebRequestBlock.Input, files: list[FilePart]) -> Body:
    if files:
        return Body.multipart(data.body, files)
    return Body.json(data.body) if data.json_format else Body.form(data.body)


def _request(
    data: SendWebRequestBlock.Input,
    headers: Mapping[str, str],
    context: BlockContext,
    private: Collection[str] = (),
) -> Iterator[tuple[str, Any]]:
    """Send, then yield the one pin the status picks (AutoGPT's rule), or raise for the engine to retry. `private`
    headers are dropped on a redirect that leaves the origin, like Authorization."""
    if data.files and data.json_format:
        raise BlockError(FILES_WITH_JSON)
    body = _body(data, _file_parts(data.files, data.files_name, context))
    response = send_request(
        data.method.value, data.url, context.http, headers=headers, body=body, private_headers=private
    )
    status = response.status
    if status in RETRYABLE_STATUSES and not context.last_attempt:
        raise RetryableError(_answered(response), retry_after=response.retry_after())
    pin = "response" if 200 <= status < 300 else "client_error" if 400 <= status < 500 else "server_error"
    yield pin, response.body


def _with_credentials(credentials: Any, url: str, headers: Mapping[str, str]) -> tuple[dict[str, str], set[str]]:
    """The credentials' headers under the user's (user wins, names compared without case), only when the URL's
    host matches, and the names injected. The URL is canonicalised first, so the host matched is the host the
    request goes to (`http://evil\\@good/` is evil's)."""
    from agentflow.net.guard import canonical_url

    if credentials is None:
        logger.warning("no host-scoped credentials were resolved: the request goes out without them")
        return dict(headers), set()
    if not isinstance(credentials, HostScopedCredentials):
        raise BlockError(f"credentials must be host-scoped ({CredentialType.HOST_SCOPED.value})")
    if not credentials.matches_url(canonical_url(url)):
        logger.warning("host-scoped credentials %s do not match the URL's host: not sent", credentials.id)
        return dict(headers), set()
    taken = {name.lower() for name in headers}
    injected = {k: v for k, v in credentials.header_values().items() if k.lower() not in taken}
    return {**injected, **headers}, set(injected)


# -- the blocks --------------------------------------------------------------------------------------------


class SendWebRequestBlock(Block):
    id = "6595ae1f-b924-42cb-9a41-551a0611c4b4"
    description = "Make an HTTP request (JSON / form / multipart)."
    categories = frozenset({BlockCategory.OUTPUT})

    class Input(BlockSchema):
        url: str = Field(
            description="The URL to send the request to", json_schema_extra={"placeholder": "https://api.example.com"}
        )
        method: HttpMethod = Field(default=HttpMethod.POST, description="The HTTP method to use for the request")
        headers: dict[str, str] = Field(default_factory=dict, description="The headers to include in the request")
        json_format: bool = Field(
            default=True,
            title="JSON format",
            description="If true, send the body as JSON (unless files are also present).",
        )
        body: dict[str, Any] | None = Field(
            default=None,
            description="Form/JSON body payload. If files are supplied, this must be a mapping of form-fields.",
        )
        files_name: str = Field(default="file", description="The name of the file field in the form data.")
        files: list[str] = Field(
            default_factory=list, description="Files to upload: data: URIs or http(s) URLs (stored files: no)."
        )

    class Output(BlockSchemaOutput):
        response: Any = Field(description="The response from the server")
        client_error: Any = Field(description="Errors on 4xx status codes")
        server_error: Any = Field(description="Errors on 5xx status codes")
        error: str = Field(default="", description="Errors for all other exceptions")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield from _request(input_data, input_data.headers, context)

    test_cases = (
        BlockTestCase(
            {"url": "http://169.254.169.254/latest/meta-data", "method": "GET"},
            [],
            "the cloud metadata address is refused before any connection",
            error="refused http://169.254.169.254: 169.254.169.254 is the cloud metadata address",
        ),
        BlockTestCase({"url": "http://[::1]:8080/"}, [], "IPv6 loopback", error="::1 is a loopback address"),
        BlockTestCase({"url": "ftp://example.com/x"}, [], "http(s) only", error="URL scheme 'ftp' is not allowed"),
        BlockTestCase(
            {"url": "http://10.0.0.1/", "files": ["data:text/plain;base64,aGk="]},
            [],
            "files need json_format off",
            error="json_format=True cannot be combined with file uploads",
        ),
        BlockTestCase(
            {"url": "https://example.com/", "json_format": False, "files": ["/etc/passwd"]},
            [],
            "stored files and paths are not supported",
            error="is neither a data: URI nor an http(s) URL",
        ),
        BlockTestCase({"method": "GET"}, [], "url is required", error="missing required input 'url'"),
    )


class SendAuthenticatedWebRequestBlock(Block):
    id = "fff86bcd-e001-4bad-a7f6-2eae4720c8dc"
    description = "Make an authenticated HTTP request with host-scoped credentials (JSON / form / multipart)."
    categories = frozenset({BlockCategory.OUTPUT})

    class Input(SendWebRequestBlock.Input):
        credentials: CredentialsMetaInput = CredentialsField(
            "http",
            [CredentialType.HOST_SCOPED],
            description="HTTP host-scoped credentials for automatic header injection",
            discriminator="url",
        )

    Output = SendWebRequestBlock.Output

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        credentials = context.credentials.get("credentials")
        headers, injected = _with_credentials(credentials, input_data.url, input_data.headers)
        # Scoped to one host: a redirect elsewhere must not carry them, whatever their names (AutoGPT's would).
        yield from _request(input_data, headers, context, private=injected)

    test_cases = (
        BlockTestCase(
            {"url": "http://10.0.0.1/", "credentials": {"id": "c", "provider": "http", "type": "host_scoped"}},
            [],
            "a private address is refused",
            error="10.0.0.1 is a private address (10.0.0.0/8)",
        ),
        BlockTestCase(
            {"url": "gopher://x/", "credentials": {"id": "c", "provider": "http", "type": "host_scoped"}},
            [],
            "http(s) only",
            error="URL scheme 'gopher' is not allowed",
        ),
        BlockTestCase({"url": "http://x.test/"}, [], "credentials required", error="missing required input 'creden"),
    )
