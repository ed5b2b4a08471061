"""Pending human reviews (README, "Human review"; docs/architecture.md, "Human review"). One review item per node
execution, in its run's partition (so it expires with the run); while WAITING it is also on GSI1 under its user,
newest first, which is what `GET /reviews` lists. A review is decided once, by a conditional write built from
`REVIEW_TRANSITIONS`; the review node's wait is counted in its run's `reviewing`, beside `pending`, so the run can
tell "nothing left but reviews" (-> REVIEW) in one conditional write."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError

from agentflow import keys
from agentflow.clock import iso_at
from agentflow.errors import ResourceLimit
from agentflow.statuses import (
    NODE_TRANSITIONS,
    REVIEW_TRANSITIONS,
    ExecutionStatus,
    NodeStatus,
    ReviewStatus,
)
from agentflow.store.dynamo import Expr, deserialize_item, error_code, serialize
from agentflow.store.endings import NodeEndings

DecidedBy = Literal["person", "timeout", "stop"]
# a decision lands only while its run goes on (or waits for it): a stopped or ended run's review is not decided
DECIDABLE_RUN = (ExecutionStatus.RUNNING, ExecutionStatus.REVIEW)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class ReviewRecord:
    """One node execution's review: the data to review, and once decided, the decision."""

    review_id: str
    user_id: str
    execution_id: str
    graph_id: str
    graph_version: int
    node_id: str
    seq: int
    payload: str  # JSON: the data to review (the block's `data`)
    instructions: str
    editable: bool
    status: ReviewStatus
    created_at: str | None = None
    timeout_at: float | None = None  # epoch seconds; None: it waits as long as it takes
    on_timeout: str = "reject"
    reviewed_data: str | None = None  # JSON: the reviewer's edit, when the data was changed
    review_message: str | None = None
    was_edited: bool = False
    timed_out: bool = False
    reviewed_at: str | None = None

    @property
    def data(self) -> Any:
        """What the block yields: the reviewer's edit, else the data as it was."""
        return json.loads(self.reviewed_data if self.reviewed_data is not None else self.payload)

    @staticmethod
    def from_item(item: Mapping[str, Any]) -> ReviewRecord:
        return ReviewRecord(
            review_id=str(item["review_id"]),
            user_id=str(item.get("user_id", "")),
            execution_id=str(item.get("execution_id", "")),
            graph_id=str(item.get("graph_id", "")),
            graph_version=int(item.get("graph_version", 0)),
            node_id=str(item.get("node_id", "")),
            seq=int(item.get("seq", 0)),
            payload=str(item.get("payload", "null")),
            instructions=str(item.get("instructions", "")),
            editable=bool(item.get("editable", True)),
            status=ReviewStatus(item["status"]),
            created_at=_opt(item.get("created_at")),
            timeout_at=None if item.get("timeout_at") is None else float(item["timeout_at"]),
            on_timeout=str(item.get("on_timeout", "reject")),
            reviewed_data=_opt(item.get("reviewed_data")),
            review_message=_opt(item.get("review_message")),
            was_edited=bool(item.get("was_edited", False)),
            timed_out=bool(item.get("timed_out", False)),
            reviewed_at=_opt(item.get("reviewed_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The review as the API shows it."""
        return {
            "id": self.review_id,
            "execution_id": self.execution_id,
            "graph_id": self.graph_id,
            "graph_version": self.graph_version,
            "node_id": self.node_id,
            "payload": json.loads(self.payload),
            "instructions": self.instructions,
            "editable": self.editable,
            "status": self.status.value,
            "created_at": self.created_at,
            "timeout_at": None if self.timeout_at is None else iso_at(self.timeout_at),
            "on_timeout": self.on_timeout,
            "reviewed_data": None if self.reviewed_data is None else json.loads(self.reviewed_data),
            "review_message": self.review_message,
            "was_edited": self.was_edited,
            "timed_out": self.timed_out,
            "reviewed_at": self.reviewed_at,
        }


@dataclass(frozen=True)
class Decision:
    """How a review is decided: by a person (`approved`, maybe an edit and a message) or by its timeout."""

    status: ReviewStatus
    message: str | None = None
    reviewed_data: str | None = None  # JSON, only when it differs from the payload
    timed_out: bool = False


class ReviewsPort(Protocol):
    """What the engine needs of the review items."""

    def create_review(self, review: ReviewRecord) -> ReviewRecord: ...

    def get_review(self, review_id: str) -> ReviewRecord | None: ...

    def list_waiting_reviews(self, user_id: str, limit: int) -> list[ReviewRecord]: ...

    def decide_review(self, review_id: str, decision: Decision, now: float, by: DecidedBy) -> bool: ...

    def wait_for_review(self, execution_id: str, node_id: str, seq: int, attempt: int, review_id: str) -> bool: ...

    def end_review_wait(self, execution_id: str, node_id: str, seq: int, target: NodeStatus) -> bool: ...


class ReviewItems(NodeEndings):
    def create_review(self, review: ReviewRecord) -> ReviewRecord:
        """Record a WAITING review once: a repeated create (a duplicate delivery) finds the first one."""
        pk, sk = keys.execution_pk(review.execution_id), keys.review_sk(review.review_id)
        item: dict[str, Any] = {
            "review_id": review.review_id,
            "user_id": review.user_id,
            "execution_id": review.execution_id,
            "graph_id": review.graph_id,
            "graph_version": review.graph_version,
            "node_id": review.node_id,
            "seq": review.seq,
            "payload": review.payload,
            "instructions": review.instructions,
            "editable": review.editable,
            "status": ReviewStatus.WAITING.value,
            "on_timeout": review.on_timeout,
            "created_at": self._now(),
            "GSI1PK": keys.reviews_waiting(review.user_id),
            "GSI1SK": f"{self._now()}#{review.review_id}",
        }
        if review.timeout_at is not None:
            item["timeout_at"] = review.timeout_at
        expr = Expr()
        try:
            self._call(
                "put_item",
                TableName=self.table,
                Item={**self._key(pk, sk), **{k: serialize(v) for k, v in item.items()}},
                ConditionExpression=f"attribute_not_exists({expr.n('PK')})",
                **expr.params(),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            existing = self.get_review(review.review_id)  # it exists, and the first one counts
            if existing is None:
                raise
            return existing
        return ReviewRecord.from_item({**item, "PK": pk, "SK": sk})

    def get_review(self, review_id: str) -> ReviewRecord | None:
        item = self._get(keys.execution_pk(keys.review_execution(review_id)), keys.review_sk(review_id))
        return None if item is None or "review_id" not in item else ReviewRecord.from_item(item)

    def list_waiting_reviews(self, user_id: str, limit: int) -> list[ReviewRecord]:
        """A user's WAITING reviews, newest first: the index names them, then they are read consistently in one batch
        (a review decided a moment ago may still be on the index)."""
        expr = Expr()
        response = self._call(
            "query",
            TableName=self.table,
            IndexName="GSI1",
            KeyConditionExpression=f"{expr.n('GSI1PK')} = {expr.v(keys.reviews_waiting(user_id))}",
            ScanIndexForward=False,
            Limit=limit,
            **expr.params(),
        )
        listed = [(raw["PK"]["S"], raw["SK"]["S"]) for raw in response.get("Items", [])]
        found: dict[tuple[str, str], ReviewRecord] = {}
        request = [self._key(pk, sk) for pk, sk in listed]
        pending: dict[str, Any] = {self.table: {"Keys": request, "ConsistentRead": True}} if request else {}
        for attempt in range(8):  # one BatchGetItem (a page is at most 100 keys), then what it left unprocessed
            if not pending:
                return [found[key] for key in listed if key in found]  # newest first, as listed
            if attempt:
                time.sleep(0.05 * 2**attempt)
            answer = self._call("batch_get_item", RequestItems=pending)
            for raw in answer.get("Responses", {}).get(self.table, []):
                item = deserialize_item(raw)
                if item is not None and item.get("status") == ReviewStatus.WAITING.value:
                    found[(str(item["PK"]), str(item["SK"]))] = ReviewRecord.from_item(item)
            pending = answer.get("UnprocessedKeys") or {}
        raise ResourceLimit("DynamoDB left reviews unread after 8 attempts (throttled)")

    def decide_review(self, review_id: str, decision: Decision, now: float, by: DecidedBy) -> bool:
        """WAITING -> APPROVED/REJECTED, once. A person decides only before the review's timeout and while its run
        is RUNNING or REVIEW (one transaction with a check of the run); a timeout decides only after it. A stop
        rejects with neither condition. False when the review was decided already (or the conditions failed)."""
        execution_id = keys.review_execution(review_id)
        expr = Expr()
        sets = [
            f"{expr.n('reviewed_at')} = {expr.v(self._now())}",
            f"{expr.n('was_edited')} = {expr.v(decision.reviewed_data is not None)}",
            f"{expr.n('timed_out')} = {expr.v(decision.timed_out)}",
        ]
        if decision.message is not None:
            sets.append(f"{expr.n('review_message')} = {expr.v(decision.message)}")
        if decision.reviewed_data is not None:
            sets.append(f"{expr.n('reviewed_data')} = {expr.v(decision.reviewed_data)}")
        condition = None
        if by == "timeout":
            condition = f"{expr.n('timeout_at')} <= {expr.v(now)}"
        elif by == "person":
            timeout = expr.n("timeout_at")
            condition = f"attribute_not_exists({timeout}) OR {timeout} > {expr.v(now)}"
        update = self._status_update(
            keys.execution_pk(execution_id),
            keys.review_sk(review_id),
            REVIEW_TRANSITIONS,
            decision.status,
            [ReviewStatus.WAITING],
            expr=expr,
            sets=sets,
            removes=[expr.n("GSI1PK"), expr.n("GSI1SK")],  # off the user's pending list
            condition=condition,
        )
        if by != "person":
            return self._conditional_update(update).won
        ex = Expr()
        run_check = {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "ConditionExpression": ex.status_in(DECIDABLE_RUN),
            **ex.params(),
        }
        return self._transact([{"Update": update}, {"ConditionCheck": run_check}]) is None

    def wait_for_review(self, execution_id: str, node_id: str, seq: int, attempt: int, review_id: str) -> bool:
        """RUNNING -> WAITING for a review node whose review is recorded, and the run's `reviewing` + 1, in one
        transaction."""
        node_update = self._wait_update(execution_id, node_id, seq, attempt, "review_id", review_id)
        return self._transact([{"Update": node_update}, {"Update": self._reviewing_add(execution_id, 1)}]) is None

    def end_review_wait(self, execution_id: str, node_id: str, seq: int, target: NodeStatus) -> bool:
        """WAITING -> QUEUED (its review was decided) or -> TERMINATED (its run stopped), and `reviewing` - 1, in
        one transaction; only one caller wins."""
        expr = Expr()
        node_update = self._status_update(
            keys.execution_pk(execution_id),
            keys.node_sk(node_id, seq),
            NODE_TRANSITIONS,
            target,
            [NodeStatus.WAITING],
            expr=expr,
            condition=f"attribute_exists({expr.n('review_id')})",
        )
        return self._transact([{"Update": node_update}, {"Update": self._reviewing_add(execution_id, -1)}]) is None

    def _reviewing_add(self, execution_id: str, delta: int) -> dict[str, Any]:
        ex = Expr()
        return {
            "TableName": self.table,
            "Key": self._key(keys.execution_pk(execution_id), keys.META),
            "UpdateExpression": f"ADD {ex.n('reviewing')} {ex.v(delta)}",
            **ex.params(),
        }
