"""The SQS API of the local queues: what a queue resource says (`QueueSpec`), and the operations the engine calls,
checked and answered as SQS does: SendMessage, SendMessageBatch, GetQueueUrl and GetQueueAttributes. Any other
SQS operation is UnsupportedOperation: Lambda's event source mapping receives and deletes the messages here,
in-process (`queues_delivery`). `queues_http` serves these operations over HTTP.

SQS moved from its older query protocol to AWS JSON 1.0 and keeps the query protocol's error codes: an SqsError
carries both the modeled exception (`shape`, the JSON `__type`) and that code (`query_code`, which botocore reports
as the ClientError code), e.g. QueueDoesNotExist and `AWS.SimpleQueueService.NonExistentQueue`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agentflow.errors import InvalidInput
from agentflow_local.template import TemplateError, queue_logical_id

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "MAX_DELAY_SECONDS",
    "OPERATIONS",
    "Accepted",
    "QueueSpec",
    "SqsError",
    "accept_message",
    "answer",
    "read_queue",
]


MAX_DELAY_SECONDS = 900
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 262_144  # all the messages of one SendMessageBatch together
MAX_MESSAGE_ATTRIBUTES = 10

# The characters SQS accepts in a message: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
_INVALID_CHARACTERS = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BATCH_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
# The attribute names GetQueueAttributes knows (the local queues answer those they have).
QUEUE_ATTRIBUTE_NAMES = frozenset(
    (
        "All",
        "Policy",
        "VisibilityTimeout",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "QueueArn",
        "ApproximateNumberOfMessagesDelayed",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
        "RedrivePolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "RedriveAllowPolicy",
        "SqsManagedSseEnabled",
    )
)


# --- what a queue resource says ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSpec:
    """What an `AWS::SQS::Queue` resource says about how its messages flow; SQS's defaults where it says nothing."""

    logical_id: str
    name: str | None = None  # QueueName, when the template gives a literal one (CloudFormation names it otherwise)
    visibility_timeout: int = 30  # VisibilityTimeout
    delay_seconds: int = 0  # DelaySeconds: the delay of a message sent without one
    message_retention: int = 345_600  # MessageRetentionPeriod: 4 days
    maximum_message_size: int = 262_144  # MaximumMessageSize: 256 KiB
    max_receive_count: int | None = None  # RedrivePolicy: receives before a message moves to the dead-letter queue
    dead_letter_queue: str | None = None  # RedrivePolicy: logical id of the deadLetterTargetArn (or a literal ARN)
    fifo: bool = False
    managed_sse: bool = True  # SqsManagedSseEnabled (SQS's default for new queues)


# AWS::SQS::Queue property -> QueueSpec field, for the numbers
_QUEUE_NUMBERS = {
    "VisibilityTimeout": "visibility_timeout",
    "DelaySeconds": "delay_seconds",
    "MessageRetentionPeriod": "message_retention",
    "MaximumMessageSize": "maximum_message_size",
}


def _number(where: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise TemplateError(f"{where} must be a whole number for the local stack, not {value!r}")
    return int(value)


def read_queue(logical_id: str, resource: Mapping[str, Any]) -> QueueSpec:
    """An `AWS::SQS::Queue` resource (as `AppTemplate.resources` holds it) -> its QueueSpec."""
    props: Mapping[str, Any] = resource.get("Properties") or {}
    defaults = QueueSpec(logical_id)
    numbers: dict[str, Any] = {
        field: _number(f"{logical_id}.{prop}", props.get(prop), getattr(defaults, field))
        for prop, field in _QUEUE_NUMBERS.items()
    }
    redrive = props.get("RedrivePolicy")
    if redrive is not None and not isinstance(redrive, Mapping):
        raise TemplateError(f"{logical_id}: RedrivePolicy must be a mapping for the local stack, not {redrive!r}")
    if redrive:
        where = f"{logical_id}.RedrivePolicy"
        numbers["max_receive_count"] = _number(f"{where}.maxReceiveCount", redrive.get("maxReceiveCount"), 0)
        if numbers["max_receive_count"] < 1:
            raise TemplateError(f"{where}: maxReceiveCount must be at least 1")
        numbers["dead_letter_queue"] = queue_logical_id(where, redrive.get("deadLetterTargetArn"))
    name = props.get("QueueName")
    return QueueSpec(
        logical_id,
        name=name if isinstance(name, str) else None,
        fifo=str(props.get("FifoQueue", False)).lower() == "true",
        managed_sse=str(props.get("SqsManagedSseEnabled", True)).lower() == "true",
        **numbers,
    )


# --- errors --------------------------------------------------------------------------------------------------


class SqsError(InvalidInput):
    """A request SQS refuses: `shape` is the modeled exception (the JSON `__type`), `query_code` the code botocore
    reports (from the `x-amzn-query-error` header)."""

    def __init__(self, shape: str, message: str, *, query_code: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.shape = shape
        self.query_code = query_code or shape
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": f"com.amazonaws.sqs#{self.shape}", "message": str(self)}


def _no_queue() -> SqsError:
    return SqsError(
        "QueueDoesNotExist", "The specified queue does not exist.", query_code="AWS.SimpleQueueService.NonExistentQueue"
    )


def _invalid(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message)


def _missing(parameter: str) -> SqsError:
    return SqsError("MissingParameter", f"The request must contain the parameter {parameter}.")


def _batch_error(shape: str, message: str) -> SqsError:
    return SqsError(shape, message, query_code=f"AWS.SimpleQueueService.{shape}")


# --- messages ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """A message SQS accepted: what it keeps, and what it answers."""

    message_id: str
    body: str
    md5_of_body: str
    message_attributes: dict[str, dict[str, str]]  # name -> {"DataType", "StringValue" | "BinaryValue" (base64)}
    md5_of_message_attributes: str | None
    trace_header: str | None  # MessageSystemAttributes.AWSTraceHeader
    delay: int
    size: int  # the bytes SQS counts against the size limits

    def answer(self) -> dict[str, str]:
        """SendMessage's answer (and a SendMessageBatch entry's, with its Id)."""
        answer = {"MessageId": self.message_id, "MD5OfMessageBody": self.md5_of_body}
        if self.md5_of_message_attributes:
            answer["MD5OfMessageAttributes"] = self.md5_of_message_attributes
        return answer


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _attribute_value(attribute: Mapping[str, str]) -> bytes:
    if "BinaryValue" in attribute:
        return base64.b64decode(attribute["BinaryValue"])
    return attribute["StringValue"].encode("utf-8")


def _md5_of_attributes(attributes: Mapping[str, Mapping[str, str]]) -> str:
    """SQS's digest of the message attributes: per attribute by name, length-prefixed name, type and value."""
    data = b""
    for name in sorted(attributes):
        attribute = attributes[name]
        for part in (name.encode("utf-8"), attribute["DataType"].encode("utf-8")):
            data += len(part).to_bytes(4, "big") + part
        value = _attribute_value(attribute)
        data += (b"\x02" if "BinaryValue" in attribute else b"\x01") + len(value).to_bytes(4, "big") + value
    return _md5(data)


def _message_attributes(value: Any) -> dict[str, dict[str, str]]:
    """Checked MessageAttributes: a type of the String, Number or Binary family and a non-empty value each."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid("MessageAttributes must be a map of names to attribute values.")
    if len(value) > MAX_MESSAGE_ATTRIBUTES:
        limit = MAX_MESSAGE_ATTRIBUTES
        raise _invalid(f"Number of message attributes [{len(value)}] exceeds the allowed maximum [{limit}].")
    checked: dict[str, dict[str, str]] = {}
    for name, attribute in value.items():
        data_type = attribute.get("DataType") if isinstance(attribute, Mapping) else None
        if not isinstance(data_type, str) or data_type.split(".", 1)[0] not in ("String", "Number", "Binary"):
            raise _invalid(
                f"The message attribute '{name}' has an invalid message attribute type, the set of supported "
                "type prefixes is Binary, Number, and String."
            )
        key = "BinaryValue" if data_type.startswith("Binary") else "StringValue"
        raw = attribute.get(key)
        if isinstance(raw, bytes):  # a direct call may pass bytes; over HTTP botocore sends base64 text
            raw = base64.b64encode(raw).decode("ascii")
        if not isinstance(raw, str) or not raw:
            raise _invalid(
                f"The message attribute '{name}' must contain non-empty message attribute value for message "
                f"attribute type '{data_type}'."
            )
        checked[str(name)] = {"DataType": data_type, key: raw}
    return checked


def _delay(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DELAY_SECONDS:
        raise _invalid(
            f"Value {value} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
        )
    return value


def accept_message(spec: QueueSpec, entry: Mapping[str, Any]) -> Accepted:
    """Check one message (SendMessage's request, or a SendMessageBatch entry) as SQS does; SqsError if refused."""
    body = entry.get("MessageBody")
    if not isinstance(body, str) or not body:
        raise _missing("MessageBody")
    if _INVALID_CHARACTERS.search(body):
        raise SqsError(
            "InvalidMessageContents",
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
            "#xE000 to #xFFFD | #x10000 to #x10FFFF",
        )
    delay = _delay(entry.get("DelaySeconds"), spec.delay_seconds)
    if entry.get("MessageDeduplicationId") is not None:
        raise _invalid("The request includes a parameter that is not valid for this queue type.")
    attributes = _message_attributes(entry.get("MessageAttributes"))
    body_bytes = body.encode("utf-8")
    size = len(body_bytes) + sum(
        len(name.encode("utf-8")) + len(a["DataType"].encode("utf-8")) + len(_attribute_value(a))
        for name, a in attributes.items()
    )
    if size > spec.maximum_message_size:
        raise _invalid(
            f"One or more parameters are invalid. Reason: Message must be shorter than {spec.maximum_message_size} "
            "bytes."
        )
    system = entry.get("MessageSystemAttributes")
    trace = system.get("AWSTraceHeader") if isinstance(system, Mapping) else None
    return Accepted(
        message_id=str(uuid.uuid4()),
        body=body,
        md5_of_body=_md5(body_bytes),
        message_attributes=attributes,
        md5_of_message_attributes=_md5_of_attributes(attributes) if attributes else None,
        trace_header=str(trace["StringValue"]) if isinstance(trace, Mapping) and "StringValue" in trace else None,
        delay=delay,
        size=size,
    )


# --- the operations ------------------------------------------------------------------------------------------


class _Queues(Protocol):
    """What the operations work on (the LocalQueues)."""

    account: str

    def find_queue(self, queue_url: str) -> str | None:
        """The logical id of the queue a QueueUrl names, or None."""
        ...

    def find_queue_named(self, name: str) -> str | None: ...

    def spec(self, logical_id: str) -> QueueSpec: ...

    def local_url(self, logical_id: str) -> str: ...

    def enqueue(self, logical_id: str, messages: Sequence[Accepted]) -> None: ...

    def queue_attributes(self, logical_id: str) -> dict[str, str]: ...


def _queue(queues: _Queues, request: Mapping[str, Any]) -> str:
    url = request.get("QueueUrl")
    if not isinstance(url, str) or not url:
        raise _missing("QueueUrl")
    logical_id = queues.find_queue(url)
    if logical_id is None:
        raise _no_queue()
    return logical_id


def send_message(queues: _Queues, request: Mapping[str, Any]) -> dict[str, Any]:
    queue = _queue(queues, request)
    accepted = accept_message(queues.spec(queue), request)
    queues.enqueue(queue, [accepted])
    return accepted.answer()


def _check_batch_entries(entries: Any) -> list[Mapping[str, Any]]:
    if not entries:
        raise _batch_error(
            "EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request."
        )
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise _invalid("Entries must be a list of SendMessageBatchRequestEntry objects.")
    if len(entries) > MAX_BATCH_ENTRIES:
        message = f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {len(entries)}."
        raise _batch_error("TooManyEntriesInBatchRequest", message)
    seen: set[str] = set()
    for entry in entries:
        entry_id = entry.get("Id")
        if not isinstance(entry_id, str) or not _BATCH_ENTRY_ID.fullmatch(entry_id):
            raise _batch_error(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                "It can be at most 80 letters long.",
            )
        if entry_id in seen:
            raise _batch_error("BatchEntryIdsNotDistinct", f"Id {entry_id} repeated.")
        seen.add(entry_id)
    return entries


def send_message_batch(queues: _Queues, request: Mapping[str, Any]) -> dict[str, Any]:
    """Whole-request refusals raise; an entry SQS refuses is reported in `Failed`, the others are sent."""
    queue = _queue(queues, request)
    entries = _check_batch_entries(request.get("Entries"))
    spec = queues.spec(queue)
    accepted: list[tuple[str, Accepted]] = []
    failed: list[dict[str, Any]] = []
    for entry in entries:
        try:
            accepted.append((entry["Id"], accept_message(spec, entry)))
        except SqsError as exc:
            failed.append({"Id": entry["Id"], "SenderFault": True, "Code": exc.query_code, "Message": str(exc)})
    total = sum(message.size for _, message in accepted)
    if total > MAX_BATCH_BYTES:
        message = f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."
        raise _batch_error("BatchRequestTooLong", message)
    queues.enqueue(queue, [message for _, message in accepted])
    return {"Successful": [{"Id": entry_id, **message.answer()} for entry_id, message in accepted], "Failed": failed}


def get_queue_url(queues: _Queues, request: Mapping[str, Any]) -> dict[str, Any]:
    name = request.get("QueueName")
    if not isinstance(name, str) or not name:
        raise _missing("QueueName")
    owner = request.get("QueueOwnerAWSAccountId")
    logical_id = queues.find_queue_named(name) if owner in (None, queues.account) else None
    if logical_id is None:
        raise _no_queue()
    return {"QueueUrl": queues.local_url(logical_id)}


def get_queue_attributes(queues: _Queues, request: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes asked for by name ("All" for every one); none when none are asked for, as SQS answers."""
    queue = _queue(queues, request)
    names = request.get("AttributeNames") or []
    if not isinstance(names, list):
        raise _invalid("AttributeNames must be a list of attribute names.")
    for name in names:
        if name not in QUEUE_ATTRIBUTE_NAMES:
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
    attributes = queues.queue_attributes(queue)
    wanted = attributes if "All" in names else {k: v for k, v in attributes.items() if k in names}
    return {"Attributes": wanted} if wanted else {}


OPERATIONS: dict[str, Callable[[_Queues, Mapping[str, Any]], dict[str, Any]]] = {
    "SendMessage": send_message,
    "SendMessageBatch": send_message_batch,
    "GetQueueUrl": get_queue_url,
    "GetQueueAttributes": get_queue_attributes,
}


def answer(queues: _Queues, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """One SQS operation, by name (`SendMessage`), with its request as boto3 names its parameters."""
    handler = OPERATIONS.get(operation)
    if handler is None:
        served = ", ".join(OPERATIONS)
        raise SqsError(
            "UnsupportedOperation",
            f"The local stack's SQS does not serve {operation}; it serves {served}. "
            "Lambda's event source mapping receives and deletes the messages, in-process.",
            query_code="AWS.SimpleQueueService.UnsupportedOperation",
        )
    return handler(queues, request)
