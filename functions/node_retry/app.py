"""NodeRetryFunction: the delayed attempts of node executions, from the SQS retry queue (docs/architecture.md,
"Retries and timeouts").

Thin on purpose: Powertools' batch utility hands each SQS record to `run_attempt` and reports the records that
raised, so only those come back after the queue's visibility timeout. The engine makes each attempt number run
at most once, whatever SQS redelivers.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from agentflow.runtime import current_runtime

RUNTIME = current_runtime()
logger = RUNTIME.logger()
copy_config_to_registered_loggers(source_logger=logger, include={"agentflow"})
ENGINE = RUNTIME.engine
metrics = RUNTIME.metrics("agentflow")
LEASE_MARGIN_MS = 5_000  # finish the bookkeeping before Lambda's own timeout


class RetryBody(BaseModel):
    execution_id: str
    node_id: str
    seq: int
    attempt: int


def run_attempt(record: SQSRecord, lambda_context: LambdaContext | None = None) -> str:
    try:
        body = RetryBody.model_validate_json(record.body)
    except ValidationError as exc:  # never valid on a later try: drop it, loudly
        logger.error("malformed retry message dropped", extra={"message_id": record.message_id, "error": str(exc)})
        return "malformed"
    logger.append_keys(correlation_id=body.execution_id)
    remaining = lambda_context.get_remaining_time_in_millis() if lambda_context is not None else 300_000
    lease_seconds = max(remaining - LEASE_MARGIN_MS, 1_000) / 1000
    outcome = ENGINE.run_node(
        body.execution_id, body.node_id, body.seq, lease_seconds=lease_seconds, attempt=body.attempt
    )
    logger.info(
        "retry handled",
        extra={"node_id": body.node_id, "seq": body.seq, "attempt": body.attempt, "outcome": outcome},
    )
    metrics.add_metric(name="NodeRetries", unit=MetricUnit.Count, value=1)
    return outcome.value


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # one processor per invocation: it keeps the batch's state, and the local stack runs invocations in threads
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=run_attempt, processor=processor, context=context)
