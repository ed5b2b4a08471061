"""Deliveries: a value sent down a link lands in the k-th slot of its sink's pin (FIFO per pin), idempotently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agentflow import keys
from agentflow.statuses import NodeStatus
from agentflow.store.dynamo import Expr, Table, Transition, update_expression
from agentflow.store.records import NodeRecord, PinsRecord


@dataclass(frozen=True)
class Delivery:
    """Where one delivered value landed: its slot, and the slot's node item after (or, on a replay, before) it."""

    slot: int
    replay: bool
    node: NodeRecord | None
    counters: Mapping[str, int] = field(default_factory=dict)


class Deliveries(Table):
    def deliver(
        self,
        execution_id: str,
        node_id: str,
        block_id: str,
        pin: str,
        delivery_id: str,
        value_json: str,
        static: bool,
        first: int = 0,
    ) -> Delivery:
        """Deliver one value to a pin of a node: the k-th value of the pin fills slot `first` + k (FIFO per pin;
        `first` is 1 where slot 0 is kept for the sink's sole source: `ValidGraph.first_counted_slot`).

        Idempotent: the delivery id and its slot are recorded in the same write that bumps the pin's counter;
        a replay finds its slot in ALL_OLD and rewrites nothing. A static pin also keeps its latest value.
        """
        pk = keys.execution_pk(execution_id)
        expr = Expr()
        counter, record = expr.n(keys.COUNTER + pin), expr.n(keys.DELIVERY + delivery_id)
        zero = expr.v(first)
        sets = [
            f"{counter} = if_not_exists({counter}, {zero}) + {expr.v(1)}",
            f"{record} = if_not_exists({counter}, {zero})",
        ]
        if static:
            sets.append(f"{expr.n(keys.STATIC + pin)} = {expr.v(value_json)}")
        result = self._conditional_update(
            {
                "TableName": self.table,
                "Key": self._key(pk, keys.pins_sk(node_id)),
                "UpdateExpression": update_expression(sets, [], []),
                "ConditionExpression": f"attribute_not_exists({record})",
                **expr.params(),
            }
        )
        assert result.item is not None
        slot = int(result.item[keys.DELIVERY + delivery_id])
        counters = PinsRecord.from_item(result.item).counters
        replay = not result.won

        written = self._fill_slot(execution_id, node_id, block_id, pin, slot, value_json)
        return Delivery(slot=slot, replay=replay or not written.won, node=written.item, counters=counters)

    def next_slot(self, execution_id: str, node_id: str, pin: str, first: int = 0) -> int:
        """Take the pin's next slot number (from `first`, as `deliver`) for a value its sender's finish delivers
        itself, creating the slot in that same transaction (docs/architecture.md, "Chains"). No delivery record: a
        sender that dies before its finish leaves an unused number, and its retry delivers the recorded way."""
        expr = Expr()
        counter = expr.n(keys.COUNTER + pin)
        response = self._call(
            "update_item",
            TableName=self.table,
            Key=self._key(keys.execution_pk(execution_id), keys.pins_sk(node_id)),
            UpdateExpression=f"SET {counter} = if_not_exists({counter}, {expr.v(first)}) + {expr.v(1)}",
            ReturnValues="UPDATED_NEW",
            **expr.params(),
        )
        return int(response["Attributes"][keys.COUNTER + pin]["N"]) - 1

    def reserve_slots(
        self, execution_id: str, node_id: str, pin: str, reservation_id: str, count: int, first: int = 0
    ) -> int:
        """Reserve `count` consecutive slots of a pin for the values one node execution sends down one link, and
        return the first. One write and one delivery record for all of them, so a fan-out's sink records one entry
        per source execution instead of one per value (docs/architecture.md, "Fan-outs"). Idempotent like
        `deliver`: a replay finds its reservation and gets the same slots; `first` as for `deliver`."""
        pk = keys.execution_pk(execution_id)
        expr = Expr()
        counter, record = expr.n(keys.COUNTER + pin), expr.n(keys.DELIVERY + reservation_id)
        zero = expr.v(first)
        result = self._conditional_update(
            {
                "TableName": self.table,
                "Key": self._key(pk, keys.pins_sk(node_id)),
                "UpdateExpression": update_expression(
                    [
                        f"{counter} = if_not_exists({counter}, {zero}) + {expr.v(count)}",
                        f"{record} = if_not_exists({counter}, {zero})",
                    ],
                    [],
                    [],
                ),
                "ConditionExpression": f"attribute_not_exists({record})",
                **expr.params(),
            }
        )
        assert result.item is not None
        return int(result.item[keys.DELIVERY + reservation_id])

    def fill_reserved(
        self, execution_id: str, node_id: str, block_id: str, pin: str, slot: int, value_json: str
    ) -> Delivery:
        """Deliver one value into a slot `reserve_slots` gave it; a replay finds the slot filled (or queued)."""
        written = self._fill_slot(execution_id, node_id, block_id, pin, slot, value_json)
        return Delivery(slot=slot, replay=not written.won, node=written.item)

    def _fill_slot(
        self, execution_id: str, node_id: str, block_id: str, pin: str, slot: int, value_json: str
    ) -> Transition[NodeRecord]:
        """Write the value into its slot, creating the slot's node item on its first value; lost when the slot
        already had it (a replay) or was queued since. Either way the item is the slot as it is now."""
        pk = keys.execution_pk(execution_id)
        ne = Expr()
        pin_attr = ne.n(keys.PIN_VALUE + pin)
        status = ne.n("status")
        now = self._now()
        slot_sets = [
            f"{pin_attr} = {ne.v(value_json)}",
            f"{status} = if_not_exists({status}, {ne.v(NodeStatus.INCOMPLETE.value)})",  # creation, not a transition
            f"{ne.n('node_id')} = {ne.v(node_id)}",
            f"{ne.n('seq')} = {ne.v(slot)}",
            f"{ne.n('block_id')} = {ne.v(block_id)}",
            f"{ne.n('attempts')} = if_not_exists({ne.n('attempts')}, {ne.v(0)})",
            f"{ne.n('created_at')} = if_not_exists({ne.n('created_at')}, {ne.v(now)})",
        ]
        slot_result = self._conditional_update(
            {
                "TableName": self.table,
                "Key": self._key(pk, keys.node_sk(node_id, slot)),
                "UpdateExpression": update_expression(slot_sets, [f"{ne.n('filled')} {ne.v({pin})}"], []),
                "ConditionExpression": f"attribute_not_exists({pin_attr}) AND "
                f"(attribute_not_exists({status}) OR {status} = {ne.v(NodeStatus.INCOMPLETE.value)})",
                **ne.params(),
            }
        )
        return slot_result.typed(NodeRecord.from_item)

    def get_pins(self, execution_id: str, node_id: str) -> PinsRecord:
        return PinsRecord.from_item(self._get(keys.execution_pk(execution_id), keys.pins_sk(node_id)))
