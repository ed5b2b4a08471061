"""NodeExecutorFunction: one EventBridge `NodeExecutionQueued` event -> one node execution.

Thin on purpose: parse the event (Powertools parser), call the engine, log with the execution id as the
correlation id. Everything else lives in the engine layer.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentflow.events import NodeExecutionQueuedDetail
from agentflow.executor.inline import InlineChain
from agentflow.runtime import current_runtime

RUNTIME = current_runtime()
logger = RUNTIME.logger()
copy_config_to_registered_loggers(source_logger=logger, include={"agentflow"})
ENGINE = RUNTIME.engine
metrics = RUNTIME.metrics("agentflow")
LEASE_MARGIN_MS = 5_000  # finish the bookkeeping before Lambda's own timeout


class NodeExecutionQueuedEvent(EventBridgeModel):
    detail: NodeExecutionQueuedDetail


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path="detail.execution_id")
@event_parser(model=NodeExecutionQueuedEvent)
def lambda_handler(event: NodeExecutionQueuedEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail

    def time_left() -> float:  # what this invocation may still hold a lease for: a chain's children need it
        return max(context.get_remaining_time_in_millis() - LEASE_MARGIN_MS, 1_000) / 1000

    chain = InlineChain(time_left)
    outcome = ENGINE.run_node(detail.execution_id, detail.node_id, detail.seq, lease_seconds=time_left(), chain=chain)
    handled = 1 + chain.steps  # the event's node and the children this invocation ran inline
    logger.info(
        "node execution handled",
        extra={"node_id": detail.node_id, "seq": detail.seq, "outcome": outcome, "inline_children": chain.steps},
    )
    metrics.add_dimension(name="outcome", value=outcome.value)  # completed, failed, duplicate, lost_lease, ...
    metrics.add_metric(name="NodeExecutions", unit=MetricUnit.Count, value=handled)
    return {
        "execution_id": detail.execution_id,
        "node_id": detail.node_id,
        "seq": detail.seq,
        "outcome": outcome,
        "node_executions": handled,
    }
