"""The review routes: a user's pending human reviews, one review, and a decision on it (README.md, "Human review").
Another user's review answers 404 like one that does not exist; a decision that cannot land answers 409 with the
review's current state and its run's status."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from agentflow.api import models as m
from agentflow.api.common import CONFLICT, Deps, _check_id, ok
from agentflow.api.errors import conflict, invalid, not_found
from agentflow.errors import NotFound
from agentflow.executor.reviews import UNCHANGED, InvalidDecision, ReviewConflict
from agentflow.store.reviews import ReviewRecord


def _out(review: ReviewRecord) -> m.ReviewOut:
    return m.ReviewOut.model_validate(review.to_dict())


def router(deps: Deps) -> APIGatewayRouter:
    r = APIGatewayRouter()
    engine = deps.engine

    def owned(review_id: str) -> ReviewRecord:
        _check_id("review", review_id)  # `<execution id>_<digest>`: the same rule as every id
        try:
            return engine.get_review(deps.user(), review_id)
        except NotFound:
            raise not_found("review", review_id) from None

    @r.get("/reviews", summary="Your pending (WAITING) human reviews, newest first", responses=ok(m.ReviewList))
    def list_reviews(limit: Annotated[int, Query(ge=1, le=100)] = 50) -> m.ReviewList:
        return m.ReviewList(reviews=[_out(review) for review in engine.list_reviews(deps.user(), limit)])

    @r.get("/reviews/<review_id>", summary="One review, pending or decided", responses=ok(m.ReviewOut))
    def get_review(review_id: str) -> m.ReviewOut:
        return _out(owned(review_id))

    @r.post(
        "/reviews/<review_id>",
        summary="Approve or reject a pending review, maybe with edited data (409 when it cannot be decided)",
        responses=ok(m.ReviewOut, CONFLICT),
    )
    def decide_review(review_id: str, body: m.ReviewDecisionIn) -> m.ReviewOut:
        _check_id("review", review_id)
        edit = body.reviewed_data if "reviewed_data" in body.model_fields_set else UNCHANGED
        try:
            decided = engine.decide_review(deps.user(), review_id, body.approved, edit, body.message)
        except NotFound:  # another user's answers like one that does not exist
            raise not_found("review", review_id) from None
        except InvalidDecision as exc:
            raise invalid(str(exc)) from None
        except ReviewConflict as lost:
            details = {"review": lost.review.to_dict(), "execution_status": lost.execution_status}
            raise conflict(str(lost), details) from None
        return _out(decided)

    return r
