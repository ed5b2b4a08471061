"""Users' key-value items, for PersistInformationBlock and RetrieveInformationBlock (README, "Built-in blocks"):
one item per (user, scoped key), upserted, last writer wins, kept until overwritten (no retention)."""

from __future__ import annotations

from agentflow import keys
from agentflow.store.dynamo import Expr, Table


class KeyValueItems(Table):
    def put_value(self, user_id: str, scoped_key: str, value_json: str, writer: str) -> None:
        """Upsert `value_json` under the user's `scoped_key`; `writer` is the node execution that wrote it."""
        expr = Expr()
        now = self._now()
        sets = [
            f"{expr.n('value')} = {expr.v(value_json)}",
            f"{expr.n('written_by')} = {expr.v(writer)}",
            f"{expr.n('updated_at')} = {expr.v(now)}",
            f"{expr.n('created_at')} = if_not_exists({expr.n('created_at')}, {expr.v(now)})",
        ]
        self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(keys.user_pk(user_id), keys.key_value_sk(scoped_key)),
            UpdateExpression="SET " + ", ".join(sets),
            **expr.params(),
        )

    def get_value(self, user_id: str, scoped_key: str) -> str | None:
        """The JSON stored under the user's `scoped_key`, or None."""
        item = self._get(keys.user_pk(user_id), keys.key_value_sk(scoped_key))
        return None if item is None else str(item["value"])
