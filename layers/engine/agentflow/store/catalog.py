"""The catalog: graphs and their immutable versions, the executions of a graph (GSI1), webhooks, schedules and
API keys (only their SHA-256 is stored)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from botocore.exceptions import ClientError

from agentflow import keys
from agentflow.errors import Conflict, InvalidInput
from agentflow.store.dynamo import (
    Expr,
    Item,
    Table,
    Transition,
    deserialize_item,
    error_code,
    serialize,
    update_expression,
)
from agentflow.store.records import ExecutionPage, ExecutionRecord, GraphHead, GraphVersion

CURSOR_KEYS = {"PK", "SK", "GSI1PK", "GSI1SK"}  # what a GSI1 page's LastEvaluatedKey holds


class InvalidCursor(InvalidInput):
    """A `cursor` that is not the `next_cursor` of a page of this listing."""

    def __init__(self, cursor: str, malformed: bool) -> None:
        super().__init__("invalid cursor: pass back the next_cursor of the previous page")
        self.cursor = cursor
        self.malformed = malformed  # not even a key (else: a key this listing's index refused)


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(deserialize_item(key)).encode()).decode()


def _decode_cursor(cursor: str | None, partition: str) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(raw, dict) or set(raw) != CURSOR_KEYS or raw.get("GSI1PK") != partition:
            raise ValueError("not a key of this listing")
        if not all(isinstance(v, str) and v for v in raw.values()):
            raise ValueError("not a key")
        return {k: serialize(v) for k, v in raw.items()}
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursor(cursor, malformed=True) from exc


class Catalog(Table):
    # -- graphs

    def put_graph_version(self, user_id: str, graph_id: str, name: str, graph_json: str) -> int:
        """Store a new immutable version of a graph and make it the active one; returns its number."""
        pk = keys.user_pk(user_id)
        for _ in range(10):
            head = self._get(pk, keys.graph_sk(graph_id))
            latest = int(head["latest_version"]) if head else 0
            version = latest + 1
            now = self._now()
            head_expr = Expr()
            head_sets = [
                f"{head_expr.n('latest_version')} = {head_expr.v(version)}",
                f"{head_expr.n('active_version')} = {head_expr.v(version)}",
                f"{head_expr.n('name')} = {head_expr.v(name)}",
                f"{head_expr.n('graph_id')} = {head_expr.v(graph_id)}",
                f"{head_expr.n('updated_at')} = {head_expr.v(now)}",
                f"{head_expr.n('created_at')} = if_not_exists({head_expr.n('created_at')}, {head_expr.v(now)})",
            ]
            condition = (
                f"{head_expr.n('latest_version')} = {head_expr.v(latest)}"
                if head
                else f"attribute_not_exists({head_expr.n('PK')})"
            )
            failed = self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": self._key(pk, keys.graph_sk(graph_id)),
                            "UpdateExpression": update_expression(head_sets, [], []),
                            "ConditionExpression": condition,
                            **head_expr.params(),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **self._key(pk, keys.graph_version_sk(graph_id, version)),
                                "graph_id": serialize(graph_id),
                                "version": serialize(version),
                                "graph": serialize(graph_json),
                                "created_at": serialize(now),
                            },
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                ]
            )
            if failed is None:
                return version
        raise Conflict(f"graph {graph_id}: too many concurrent updates")

    def get_graph_head(self, user_id: str, graph_id: str) -> GraphHead | None:
        item = self._get(keys.user_pk(user_id), keys.graph_sk(graph_id))
        return None if item is None else GraphHead.from_item(item)

    def list_graph_heads(self, user_id: str) -> list[GraphHead]:
        items = self._query(keys.user_pk(user_id), "GRAPH#")
        return [GraphHead.from_item(i) for i in items if "latest_version" in i]  # version items share the prefix

    def list_graph_versions(self, user_id: str, graph_id: str) -> list[GraphVersion]:
        items = self._query(keys.user_pk(user_id), keys.graph_versions_prefix(graph_id))
        return [GraphVersion(graph_id, int(i["version"]), i.get("created_at")) for i in items]

    def set_active_version(self, user_id: str, graph_id: str, version: int) -> Transition[GraphHead]:
        """Point the graph at an existing version; lost (with the head as it is) when there is no such version."""
        expr = Expr()
        return self._conditional_update(
            {
                "TableName": self.table,
                "Key": self._key(keys.user_pk(user_id), keys.graph_sk(graph_id)),
                "UpdateExpression": f"SET {expr.n('active_version')} = {expr.v(version)}, "
                f"{expr.n('updated_at')} = {expr.v(self._now())}",
                "ConditionExpression": f"attribute_exists({expr.n('PK')}) AND "
                f"{expr.n('latest_version')} >= {expr.v(version)}",
                **expr.params(),
            }
        ).typed(GraphHead.from_item)

    def delete_graph(self, user_id: str, graph_id: str) -> bool:
        """Delete a graph: its head goes (every route answers 404 from then on). Its immutable versions stay,
        unreachable through the API, for the executions that refer to them (a run in flight finishes normally).
        False when there was no graph."""
        return self._delete_if(keys.user_pk(user_id), keys.graph_sk(graph_id), "attribute_exists(PK)")

    def list_executions(self, user_id: str, graph_id: str, limit: int, cursor: str | None) -> ExecutionPage:
        """Executions of one graph, newest first, one page at a time (GSI1). `cursor` is a page's `cursor`;
        InvalidCursor when it is not one of this listing."""
        partition = keys.executions_by_graph(user_id, graph_id)
        start_key = _decode_cursor(cursor, partition)
        expr = Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": f"{expr.n('GSI1PK')} = {expr.v(keys.executions_by_graph(user_id, graph_id))}",
            "ScanIndexForward": False,
            "Limit": limit,
            **expr.params(),
        }
        if start_key:
            params["ExclusiveStartKey"] = start_key
        try:
            response = self._call("query", **params)
        except ClientError as exc:
            if error_code(exc) == "ValidationException":  # a well-formed key that is not one of this index
                raise InvalidCursor(cursor or "", malformed=False) from exc
            raise
        items = [i for i in (deserialize_item(raw) for raw in response.get("Items", [])) if i]
        return ExecutionPage(
            [ExecutionRecord.from_item(i) for i in items], _encode_cursor(response.get("LastEvaluatedKey"))
        )

    # -- webhooks

    def put_webhook(self, webhook: Item) -> None:
        now = self._now()
        item = {
            **webhook,
            "created_at": now,
            "GSI1PK": keys.webhooks_by_graph(webhook["user_id"], webhook["graph_id"]),
            "GSI1SK": f"{now}#{webhook['webhook_id']}",
        }
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(keys.webhook_pk(webhook["webhook_id"]), keys.WEBHOOK)}
            | {k: serialize(v) for k, v in item.items()},
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_webhook(self, webhook_id: str) -> Item | None:
        return self._get(keys.webhook_pk(webhook_id), keys.WEBHOOK)

    def list_webhooks(self, user_id: str, graph_id: str) -> list[Item]:
        return self._index_query("GSI1", keys.webhooks_by_graph(user_id, graph_id), "GSI1PK")

    def _owned_webhook_update(
        self, user_id: str, graph_id: str, webhook_id: str, delete: bool, secret: str = ""
    ) -> bool:
        expr = Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(keys.webhook_pk(webhook_id), keys.WEBHOOK),
            "ConditionExpression": f"{expr.n('user_id')} = {expr.v(user_id)} AND "
            f"{expr.n('graph_id')} = {expr.v(graph_id)}",
        }
        if not delete:
            params["UpdateExpression"] = (
                f"SET {expr.n('secret')} = {expr.v(secret)}, {expr.n('rotated_at')} = {expr.v(self._now())}"
            )
        params.update(expr.params())
        try:
            self._call("delete_item" if delete else "update_item", **params)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delete_webhook(self, user_id: str, graph_id: str, webhook_id: str) -> bool:
        """Delete a webhook of this user's graph; False when there is no such webhook (or not theirs)."""
        return self._owned_webhook_update(user_id, graph_id, webhook_id, delete=True)

    def rotate_webhook_secret(self, user_id: str, graph_id: str, webhook_id: str, secret: str) -> bool:
        return self._owned_webhook_update(user_id, graph_id, webhook_id, delete=False, secret=secret)

    # -- schedules

    def put_schedule(self, schedule: Item) -> None:
        now = self._now()
        item = {
            **schedule,
            "enabled": True,
            "created_at": now,
            "GSI1PK": keys.schedules_by_user(schedule["user_id"]),
            "GSI1SK": f"{now}#{schedule['schedule_id']}",
            "GSI2PK": keys.ENABLED_SCHEDULES,
            "GSI2SK": schedule["schedule_id"],
        }
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(keys.schedule_pk(schedule["schedule_id"]), keys.SCHEDULE)}
            | {k: serialize(v) for k, v in item.items() if v is not None},
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_schedule(self, schedule_id: str) -> Item | None:
        return self._get(keys.schedule_pk(schedule_id), keys.SCHEDULE)

    def list_schedules(self, user_id: str) -> list[Item]:
        return self._index_query("GSI1", keys.schedules_by_user(user_id), "GSI1PK")

    def list_enabled_schedules(self) -> list[Item]:
        found = self._index_query("GSI2", keys.ENABLED_SCHEDULES, "GSI2PK")  # keys only
        items = (self._get(str(k["PK"]), str(k["SK"])) for k in found)
        return [i for i in items if i is not None and i.get("enabled", True)]

    def delete_schedule(self, user_id: str, schedule_id: str) -> bool:
        expr = Expr()
        condition = f"{expr.n('user_id')} = {expr.v(user_id)}"
        return self._delete_if(keys.schedule_pk(schedule_id), keys.SCHEDULE, condition, expr)

    def disable_schedule(self, schedule_id: str, reason: str) -> None:
        expr = Expr()
        self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(keys.schedule_pk(schedule_id), keys.SCHEDULE),
            UpdateExpression=f"SET {expr.n('enabled')} = {expr.v(False)}, "
            f"{expr.n('disabled_reason')} = {expr.v(reason)} REMOVE {expr.n('GSI2PK')}, {expr.n('GSI2SK')}",
            ConditionExpression=f"attribute_exists({expr.n('PK')})",
            **expr.params(),
        )

    # -- API keys (only their SHA-256 is stored)

    def put_api_key(self, key_hash: str, user_id: str, name: str) -> None:
        item = {"user_id": user_id, "name": name, "created_at": self._now(), "status": "active"}
        self._call(
            "put_item",
            TableName=self.table,
            Item={**self._key(keys.api_key_pk(key_hash), "KEY"), **{k: serialize(v) for k, v in item.items()}},
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_api_key(self, key_hash: str) -> Item | None:
        return self._get(keys.api_key_pk(key_hash), "KEY")

    def get_graph_version(self, user_id: str, graph_id: str, version: int) -> str | None:
        item = self._get(keys.user_pk(user_id), keys.graph_version_sk(graph_id, version))
        return None if item is None else str(item["graph"])
