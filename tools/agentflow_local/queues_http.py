"""The HTTP endpoint of the local queues: SQS's AWS JSON 1.0 protocol, so a real boto3 `sqs` client can call them.

botocore sends `POST /` with `X-Amz-Target: AmazonSQS.<Operation>` and a JSON body; an error answer has the
modeled exception as `__type` and SQS's query-protocol code in the `x-amzn-query-error` header
(`AWS.SimpleQueueService.NonExistentQueue;Sender`), which botocore reports as the ClientError code and maps to
the modeled exception (`client.exceptions.QueueDoesNotExist`). What a request gets is up to `queues_api`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from agentflow_local.json_endpoint import KeepAliveServer, read_limited_body
from agentflow_local.queues_api import SqsError

__all__ = ["CONTENT_TYPE", "MAX_BODY_BYTES"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024  # bodies larger than this are refused outright
CONTENT_TYPE = "application/x-amz-json-1.0"


class _Backend(Protocol):
    """What the HTTP endpoint serves (the LocalQueues)."""

    def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]: ...


class _QueuesHTTPServer(KeepAliveServer):
    def __init__(self, address: tuple[str, int], backend: _Backend) -> None:
        self.backend = backend
        super().__init__(address, _SqsRequestHandler)


class _SqsRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 expects
    server: _QueuesHTTPServer

    def _reply(self, status: int, body: Mapping[str, Any], query_error: str | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if query_error:
            self.send_header("x-amzn-query-error", query_error)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, error: SqsError) -> None:
        fault = "Sender" if error.status < 500 else "Receiver"
        self._reply(error.status, error.body(), f"{error.query_code};{fault}")

    def _read_body(self) -> bytes | None:
        return read_limited_body(self, MAX_BODY_BYTES)

    def _request(self) -> tuple[str, dict[str, Any]]:
        """(operation, request) of an `AmazonSQS.<Operation>` call; SqsError for anything else."""
        body = self._read_body()
        if body is None:
            raise SqsError(
                "InvalidParameterValue", f"the request body is missing a length or is over {MAX_BODY_BYTES} bytes"
            )
        service, _, operation = self.headers.get("X-Amz-Target", "").partition(".")
        if service != "AmazonSQS" or not operation:
            message = "the local stack's SQS answers POST / with an X-Amz-Target of AmazonSQS.<Operation>"
            raise SqsError("UnknownOperationException", message)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            raise SqsError("SerializationException", "the request body is not a JSON object")
        return operation, request

    def do_POST(self) -> None:
        try:
            operation, request = self._request()
            answer = self.server.backend.call(operation, request)
        except SqsError as exc:
            self._error(exc)
            return
        except Exception as exc:  # a bug here must reach the client as a 500, not as a dropped connection
            logger.exception("local queues: %s failed", self.headers.get("X-Amz-Target"))
            self._error(SqsError("InternalError", f"the local queues failed: {exc!r}", status=500))
            return
        self._reply(200, answer)

    def _not_supported(self) -> None:
        self._read_body()
        self._error(SqsError("UnknownOperationException", "the local stack's SQS answers POST / only"))

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_supported

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("local queues http: " + format, *args)
