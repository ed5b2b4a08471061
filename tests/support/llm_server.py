"""A loopback stand-in for the OpenAI and Anthropic APIs, for tests that drive the real `openai` and `anthropic`
SDKs (never a mock of them): it speaks their wire formats, answers from a script, and records every request.

    from tests.support.llm_server import anthropic_text, llm_server, openai_tool_calls, provider_error

    with llm_server() as server:
        server.script(openai_tool_calls([("search", {"q": "cats"})]), provider_error(429, "slow down", retry_after=2))
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
        ...  # first call: a tool call; second call: openai.RateLimitError, retry-after "2"
        assert server.calls("openai") == 2
        assert server.requests[0].headers["authorization"] == "Bearer sk-test"

Routes: POST /v1/chat/completions (and /chat/completions, for a base URL given without /v1) answers as OpenAI
Chat Completions; POST /v1/messages as Anthropic Messages (`anthropic_base_url` is the bare URL, the SDK adds
/v1/messages); GET /v1/models (and /models) always answers the fixed list MODELS and never takes a scripted reply;
anything else is a 404 with an OpenAI-style error body that names the method and path.

Answers for the two generation routes, in this order: the next scripted Reply (`script()`, one FIFO queue shared
by both providers), else the responder (`respond_with()`), else the default text "ok" (DEFAULT_TEXT) in the
path's provider's format. The builders leave `id` and `model` unset; the server fills them in per request
(`chatcmpl-llmserver-<n>` / `msg_llmserver_<n>`, n = the request's 1-based number on this server; the model the
request named). `created` is the fixed CREATED, never the clock. Default usage: PROMPT_TOKENS (11) prompt/input
and COMPLETION_TOKENS (7) completion/output tokens.

Test-authoring mistakes do not pass silently: a reply built for one provider sent to the other's path, or a
responder that raised, answers 500; a streaming request ("stream": true; this server does not stream) answers 400.
Each is listed in `server.problems` (a fixture can assert it stays empty).

Keys: openai sends `authorization: Bearer <api_key>`; anthropic 2.x sends its api_key the same way (no x-api-key
header) with `anthropic-version`. `RecordedRequest.api_key` reads x-api-key or the Bearer token, whichever came.

What the SDKs (openai 3.x, anthropic 2.x, clients built with max_retries=0) raise:
  status 401 -> AuthenticationError, 429 -> RateLimitError (`.response.headers["retry-after"]`), 500 ->
  InternalServerError, in both; Anthropic 529 (overloaded_error) -> anthropic.OverloadedError, a subclass of
  anthropic.InternalServerError. `malformed()` (a 200 whose body is not JSON) -> neither SDK wraps the decoding
  error: `client.chat.completions.create` / `client.messages.create` raise json.JSONDecodeError (a ValueError),
  not an openai/anthropic exception (tests/unit/test_llm_server.py pins this down).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

__all__ = [
    "COMPLETION_TOKENS",
    "CREATED",
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_OPENAI_MODEL",
    "DEFAULT_TEXT",
    "MODELS",
    "PROMPT_TOKENS",
    "LlmServer",
    "RecordedRequest",
    "Reply",
    "anthropic_text",
    "anthropic_tool_use",
    "llm_server",
    "malformed",
    "openai_text",
    "openai_tool_calls",
    "provider_error",
]

PROMPT_TOKENS = 11  # default prompt_tokens (OpenAI) / input_tokens (Anthropic)
COMPLETION_TOKENS = 7  # default completion_tokens (OpenAI) / output_tokens (Anthropic)
CREATED = 1_700_000_000  # the fixed `created` of every OpenAI object: answers never depend on the clock
DEFAULT_TEXT = "ok"  # the answer when nothing is scripted
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"  # the `model` of an answer whose request named none
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5"
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini")  # GET /v1/models

PROVIDERS = ("openai", "anthropic")
_JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `body`: dict/list (or any JSON value) is sent as JSON; str/bytes are sent as given (for
    malformed bodies), with content-type application/json unless `headers` names one; None sends an empty body.
    `provider` is set by the builders (which provider's format the body is in); leave it None for a hand-made
    reply the server should send whatever the path."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    provider: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    path: str  # without the query string, e.g. "/v1/chat/completions" or "/v1/messages"
    headers: Mapping[str, str]  # lower-cased names; a repeated header's values joined with ", "
    body: Any  # the parsed JSON body, or None (no body, or not JSON)
    provider: str  # "openai" or "anthropic" from the path; "unknown" for a path this server does not serve
    method: str = "POST"

    @property
    def api_key(self) -> str | None:
        """The key the client sent: x-api-key, else the token of `authorization: Bearer <key>` (anthropic 2.x sends
        its api_key that way, with no x-api-key header)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


# --- builders -------------------------------------------------------------------------------------------------


def _openai_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_completion(
    message: dict[str, Any], finish_reason: str, prompt_tokens: int, completion_tokens: int, model: str | None
) -> Reply:
    body = {
        "id": None,  # filled in per request by the server
        "object": "chat.completion",
        "created": CREATED,
        "model": model,  # None: the request's model, filled in by the server
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": _openai_usage(prompt_tokens, completion_tokens),
        "service_tier": "default",
        "system_fingerprint": None,
    }
    return Reply(body=body, headers={"content-type": _JSON}, provider="openai")


def openai_text(
    text: str,
    *,
    prompt_tokens: int = PROMPT_TOKENS,
    completion_tokens: int = COMPLETION_TOKENS,
    model: str | None = None,
    finish_reason: str = "stop",
) -> Reply:
    """A `chat.completion` whose assistant message says `text` (finish_reason "stop", or e.g. "length")."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    return _chat_completion(message, finish_reason, prompt_tokens, completion_tokens, model)


def openai_tool_calls(
    calls: Sequence[tuple[str, Mapping[str, Any] | str]],
    *,
    text: str | None = None,
    prompt_tokens: int = PROMPT_TOKENS,
    completion_tokens: int = COMPLETION_TOKENS,
    model: str | None = None,
) -> Reply:
    """A `chat.completion` asking for tool calls (finish_reason "tool_calls"): each (name, arguments) becomes
    {"id": "call_<n>" (n from 1 within this reply), "type": "function", "function": {"name", "arguments"}}, the
    arguments as a JSON string, or a str as given (to test malformed arguments)."""
    tool_calls = [
        {
            "id": f"call_{n}",
            "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(dict(args))},
        }
        for n, (name, args) in enumerate(calls, start=1)
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": [],
        "tool_calls": tool_calls,
    }
    return _chat_completion(message, "tool_calls", prompt_tokens, completion_tokens, model)


def _message(
    content: list[dict[str, Any]], stop_reason: str, input_tokens: int, output_tokens: int, model: str | None
) -> Reply:
    body = {
        "id": None,  # filled in per request by the server
        "type": "message",
        "role": "assistant",
        "model": model,  # None: the request's model, filled in by the server
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }
    return Reply(body=body, headers={"content-type": _JSON}, provider="anthropic")


def anthropic_text(
    text: str,
    *,
    input_tokens: int = PROMPT_TOKENS,
    output_tokens: int = COMPLETION_TOKENS,
    model: str | None = None,
    stop_reason: str = "end_turn",
) -> Reply:
    """A Messages API `message` with one text block (stop_reason "end_turn", or e.g. "max_tokens")."""
    content = [{"type": "text", "text": text, "citations": None}]
    return _message(content, stop_reason, input_tokens, output_tokens, model)


def anthropic_tool_use(
    calls: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    text: str | None = None,
    input_tokens: int = PROMPT_TOKENS,
    output_tokens: int = COMPLETION_TOKENS,
    model: str | None = None,
) -> Reply:
    """A `message` asking for tools (stop_reason "tool_use"): an optional text block, then for each (name, input)
    {"type": "tool_use", "id": "toolu_<n>" (n from 1 within this reply), "name", "input"}."""
    content: list[dict[str, Any]] = [] if text is None else [{"type": "text", "text": text, "citations": None}]
    content += [
        {"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": dict(args)}
        for n, (name, args) in enumerate(calls, start=1)
    ]
    return _message(content, "tool_use", input_tokens, output_tokens, model)


# (type, code) of OpenAI error bodies, by status; other 4xx are invalid_request_error, other 5xx server_error
_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
}
# Anthropic's documented error types, by status; other 4xx are invalid_request_error, other 5xx api_error
_ANTHROPIC_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def provider_error(
    status: int,
    message: str,
    *,
    provider: str = "openai",
    retry_after: float | None = None,
    error_type: str | None = None,
    code: str | None = None,
) -> Reply:
    """An error answer in the provider's body shape. OpenAI: {"error": {"message", "type", "code", "param"}};
    Anthropic: {"type": "error", "error": {"type", "message"}}. `error_type` (and, for OpenAI, `code`) override
    the usual ones for the status, e.g. error_type="insufficient_quota". `retry_after` adds a retry-after header
    (in seconds, "2" or "0.5")."""
    _check_provider(provider)
    body: dict[str, Any]
    if provider == "openai":
        usual_type, usual_code = _OPENAI_ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        body = {
            "error": {
                "message": message,
                "type": error_type or usual_type,
                "param": None,
                "code": code if code is not None else usual_code,
            }
        }
    else:
        usual = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": error_type or usual, "message": message}}
    headers = {"content-type": _JSON}
    if retry_after is not None:
        headers["retry-after"] = _seconds(retry_after)
    return Reply(status=status, body=body, headers=headers, provider=provider)


def malformed(provider: str = "openai") -> Reply:
    """A 200 whose body is cut off mid-JSON (content-type application/json), as a proxy dropping the line would."""
    _check_provider(provider)
    start = '{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": '
    if provider == "anthropic":
        start = '{"id": "msg_broken", "type": "message", "role": "assistant", "content": [{"type": "text", "text": '
    return Reply(status=200, body=start, headers={"content-type": _JSON}, provider=provider)


# --- the server -----------------------------------------------------------------------------------------------

_GENERATION = {
    ("POST", "/v1/chat/completions"): "openai",
    ("POST", "/chat/completions"): "openai",
    ("POST", "/v1/messages"): "anthropic",
}
_LISTING = {("GET", "/v1/models"): "openai", ("GET", "/models"): "openai"}
_REASONS = {529: "Overloaded"}  # not in http.HTTPStatus
_ID_PREFIX = {"openai": "chatcmpl-llmserver-", "anthropic": "msg_llmserver_"}
_REQUEST_ID_HEADER = {"openai": "x-request-id", "anthropic": "request-id"}


def _models_list() -> dict[str, Any]:
    data = [{"id": name, "object": "model", "created": CREATED, "owned_by": "openai"} for name in MODELS]
    return {"object": "list", "data": data}


def _encode(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _read_chunked(stream: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while size := int(stream.readline(65537).split(b";", 1)[0].strip() or b"0", 16):
        parts.append(stream.read(size))
        stream.readline()  # the CRLF after each chunk
    while stream.readline(65537) not in (b"\r\n", b"\n", b""):  # trailers, up to the blank line
        pass
    return b"".join(parts)


class LlmServer:
    """The server; build it with `llm_server()`. Safe to call from many threads and processes at once: the queue
    and the records share one lock, so concurrent requests take scripted replies in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._responder: Callable[[RecordedRequest], Reply] | None = None
        self._requests: list[RecordedRequest] = []
        self._problems: list[str] = []
        self._httpd = _HTTPServer(self)
        host, port = self._httpd.server_address[:2]
        self.port = int(port)
        self.url = f"http://{host!s}:{port}"
        self.openai_base_url = self.url + "/v1"
        self.anthropic_base_url = self.url
        self._thread: threading.Thread | None = None

    # --- what tests call

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def problems(self) -> list[str]:
        """Test mistakes, each answered with an error: a reply made for the other provider or a responder that
        raised (500), a streaming request (400)."""
        with self._lock:
            return list(self._problems)

    @property
    def pending(self) -> int:
        """Scripted replies not yet sent."""
        with self._lock:
            return len(self._queue)

    def script(self, *replies: Reply) -> None:
        """Queue answers (FIFO, shared by both providers), after any still queued."""
        with self._lock:
            self._queue.extend(replies)

    def respond_with(self, responder: Callable[[RecordedRequest], Reply] | None) -> None:
        """Answer with `responder(request)` when the queue is empty (None: back to the default "ok"). It runs on the
        server's handler threads, outside the lock, so it must be thread-safe when requests overlap."""
        with self._lock:
            self._responder = responder

    def calls(self, provider: str | None = None) -> int:
        """How many requests arrived (all, or those of one provider)."""
        with self._lock:
            return sum(1 for r in self._requests if provider is None or r.provider == provider)

    def last(self, provider: str | None = None) -> RecordedRequest:
        """The latest request (of one provider); AssertionError when there is none."""
        matching = [r for r in self.requests if provider is None or r.provider == provider]
        assert matching, f"no {provider or 'LLM'} request reached {self.url}"
        return matching[-1]

    def reset(self) -> None:
        """Forget the script, the responder, the requests and the problems."""
        with self._lock:
            self._queue.clear()
            self._responder = None
            self._requests.clear()
            self._problems.clear()

    # --- lifecycle

    def start(self) -> None:
        # a short poll: stop() waits for the serving loop to notice, and tests start and stop servers often
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="llm-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()  # stops accepting; then unblock handlers idling on keep-alive connections
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(10)

    # --- what the handler calls

    def answer(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        """Record `record` and choose its answer: (status, headers, body)."""
        try:
            return self._answer(record)
        except Exception as error:  # a bug of this module: still answer, and say so
            return self._render(self._mistake(record, f"llm_server failed: {error!r}"), record, 0)

    def _answer(self, record: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        key = (record.method, record.path)
        streams = isinstance(record.body, dict) and bool(record.body.get("stream"))
        with self._lock:
            self._requests.append(record)
            number = len(self._requests)
            takes_script = key in _GENERATION and not streams  # /v1/models and 404s never eat a scripted reply
            scripted = self._queue.popleft() if takes_script and self._queue else None
            responder = self._responder
        if key in _LISTING:
            return self._render(Reply(body=_models_list(), provider="openai"), record, number)
        if key not in _GENERATION:
            reply = provider_error(404, f"Invalid URL ({record.method} {record.path})", provider="openai")
            return self._render(reply, record, number)
        if streams:
            reply = self._mistake(record, f"{record.path}: this server does not stream (the request set stream)", 400)
        elif scripted is not None:
            reply = scripted
        elif responder is not None:
            try:
                reply = responder(record)
            except Exception as error:  # the test's bug: say so in the answer and in `problems`
                reply = self._mistake(record, f"responder raised {error!r} for request {number}")
        else:
            reply = (openai_text if record.provider == "openai" else anthropic_text)(DEFAULT_TEXT)
        if reply.provider is not None and reply.provider != record.provider:
            reply = self._mistake(record, f"request {number} to {record.path} got a reply made for {reply.provider}")
        return self._render(reply, record, number)

    def _mistake(self, record: RecordedRequest, message: str, status: int = 500) -> Reply:
        with self._lock:
            self._problems.append(message)
        provider = record.provider if record.provider in PROVIDERS else "openai"
        return provider_error(status, f"llm_server: {message}", provider=provider)

    @staticmethod
    def _render(reply: Reply, record: RecordedRequest, number: int) -> tuple[int, dict[str, str], bytes]:
        body = reply.body
        if reply.provider is not None and isinstance(body, dict) and ("id" in body or "model" in body):
            body = dict(body)  # never touch the Reply's own dict: a responder may return the same one twice
            if body.get("id", "") is None:
                body["id"] = f"{_ID_PREFIX[reply.provider]}{number}"
            if body.get("model", "") is None:
                requested = record.body.get("model") if isinstance(record.body, dict) else None
                fallback = DEFAULT_OPENAI_MODEL if reply.provider == "openai" else DEFAULT_ANTHROPIC_MODEL
                body["model"] = requested if isinstance(requested, str) else fallback
        headers = {"content-type": _JSON}
        if record.provider in _REQUEST_ID_HEADER:
            headers[_REQUEST_ID_HEADER[record.provider]] = f"req_llmserver_{number}"
        headers.update({name.lower(): value for name, value in reply.headers.items()})
        headers.pop("content-length", None)  # always computed from the body, or keep-alive breaks
        return reply.status, headers, _encode(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a test's responder never blocks the end of the test run
    request_queue_size = 128  # many clients connecting at once must not wait on the listen backlog

    def __init__(self, owner: LlmServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is no news; a bug here is
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    timeout = 120  # an idle keep-alive connection frees its thread eventually

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        raw = self._read_body()  # always read it all, or its bytes would start the next request on this connection
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        path = urlsplit(self.path).path
        provider = _GENERATION.get((self.command, path)) or _LISTING.get((self.command, path)) or "unknown"
        record = RecordedRequest(path=path, headers=headers, body=body, provider=provider, method=self.command)
        status, reply_headers, data = cast(_HTTPServer, self.server).owner.answer(record)
        self.send_response(status, _REASONS.get(status))
        for name, value in reply_headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return _read_chunked(cast(BinaryIO, self.rfile))
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # `requests` is the log; stderr stays quiet


@contextmanager
def llm_server() -> Iterator[LlmServer]:
    """A started LlmServer on 127.0.0.1 (a free port), stopped at exit."""
    server = LlmServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
