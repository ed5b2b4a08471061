"""Run slots of the concurrency limits (README, "Concurrency limits"; docs/architecture.md, "Concurrency limits").

One slot item per (user, graph): `holders`, a string set of the ids of the runs holding a slot, and `waiting`, how
many runs wait for one. A take is one conditional ADD (room below the cap, and for a start nobody waiting, or the
run holds one already, so a repeat takes nothing more); a give-back one DELETE. A run over its cap waits QUEUED:
`awaiting_slot` on its META, a marker item listing it oldest first (GSI1) and `waiting` + 1, in one transaction.
Its admission takes the slot, deletes the marker, counts it out of `waiting` and clears the flag in one
transaction, so exactly one admitter wins and the cap is never passed. `waiting` changes only in the transactions
that write or delete a marker, so it is the number of markers. A give-back leaves the item, empty, for the graph's
next run; the sweeper, which finds the items to reconcile on GSI2 (`SLOTS`), deletes one nobody has held or waited
for since an hour (`SLOT_IDLE_SECONDS`), which takes it off the index."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import ClientError

from agentflow import keys
from agentflow.errors import Conflict
from agentflow.statuses import EXECUTION_TRANSITIONS, ExecutionStatus
from agentflow.store.dynamo import Expr, Transition, deserialize_item, error_code, serialize, update_expression
from agentflow.store.records import ExecutionRecord
from agentflow.store.transitions import StatusWrites

E = ExecutionStatus
CONFLICT_RETRIES = 8  # a slot item is hot: concurrent transactions on it are cancelled, not queued
CONFLICT_BACKOFF = 0.01  # seconds, doubling, full jitter
WAITING_PAGE = 10  # waiting runs read at a time: a give-back usually admits one
FAILED_CHECK = "ConditionalCheckFailed"


class SlotsFull(Conflict):
    """A resume or redrive that would take its graph past its cap (the API answers 409)."""

    def __init__(self, graph_id: str, cap: int, status: str) -> None:
        super().__init__(
            f"graph {graph_id} is at its cap of {cap} running run{'s' if cap != 1 else ''} (max_concurrent_runs); "
            "try again once one of them ends"
        )
        self.graph_id = graph_id
        self.cap = cap
        self.status = status  # the run's own, unchanged


class AdmitOutcome(StrEnum):
    ADMITTED = "admitted"  # this call took the slot: the caller publishes the run's nodes
    FULL = "full"  # no slot is free for it
    GONE = "gone"  # it waits no more (admitted by another, stopped, ended)


@dataclass(frozen=True)
class SlotRecord:
    user_id: str
    graph_id: str
    holders: frozenset[str]  # the runs holding a slot
    waiting: int  # the runs waiting for one
    released_at: str | None = None  # the last give-back (an item left for the graph's next run)


@dataclass(frozen=True)
class Release:
    released: bool  # the run held a slot and gave it back
    waiting: int  # runs waiting for a slot of its graph, as the give-back found them


def _conflicted(exc: ClientError) -> bool:
    code = error_code(exc)
    if code == "TransactionCanceledException":
        return any(r.get("Code") == "TransactionConflict" for r in exc.response.get("CancellationReasons") or [])
    return code == "TransactionConflictException"


class SlotsPort(Protocol):
    """What the engine needs of the slot items."""

    def take_slot(
        self, user_id: str, graph_id: str, execution_id: str, cap: int | None, behind_waiters: bool = False
    ) -> bool: ...

    def release_slot(
        self, user_id: str, graph_id: str, execution_id: str, while_status: str | None = None
    ) -> Release: ...

    def drop_empty_slot(self, user_id: str, graph_id: str, idle_since: str) -> bool: ...

    def list_slots(self) -> list[SlotRecord]: ...

    def resume_with_slot(self, execution: ExecutionRecord) -> Transition[ExecutionRecord]: ...

    def wait_for_slot(self, execution: ExecutionRecord) -> Transition[ExecutionRecord]: ...

    def admit_waiting(self, execution_id: str) -> AdmitOutcome: ...

    def cancel_wait(self, execution: ExecutionRecord) -> None: ...

    def iter_waiting(self, user_id: str, graph_id: str) -> Iterator[str]: ...


class SlotItems(StatusWrites):
    """The slot items themselves: plumbing, taking and giving back a slot, listing the items."""

    # -- plumbing

    def _retrying[T](self, call: Callable[[], T]) -> T:
        """`call`, again after a short wait while a concurrent transaction on the same item cancels it."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return call()
            except ClientError as exc:
                if not _conflicted(exc) or attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, CONFLICT_BACKOFF * 2**attempt))
        raise AssertionError("unreachable")

    def _transact_codes(self, actions: list[dict[str, Any]]) -> list[str] | None:
        """A transaction; None when it committed, else each action's cancellation code ("None": it passed)."""
        try:
            self._call("transact_write_items", TransactItems=actions)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            codes = [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons") or []]
            if any(code not in ("None", FAILED_CHECK) for code in codes):
                raise  # a conflict or a throttle, not a condition: `_retrying` or the caller's retry handles it
            return codes or [FAILED_CHECK] * len(actions)
        return None

    def _slot_update(
        self, user_id: str, graph_id: str, adds: Callable[[Expr], list[str]], condition: Callable[[Expr], str] | None
    ) -> dict[str, Any]:
        """An UpdateItem of the slot item, which keeps it on the sweeper's GSI2 partition (it may be new)."""
        ex = Expr()
        sets = [
            f"{ex.n('GSI2PK')} = {ex.v(keys.SLOT_ITEMS)}",
            f"{ex.n('GSI2SK')} = {ex.v(f'{user_id}#{graph_id}')}",
        ]
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(keys.user_pk(user_id), keys.slots_sk(graph_id)),
            "UpdateExpression": update_expression(sets, adds(ex), []),
        }
        if condition is not None:
            params["ConditionExpression"] = condition(ex)
        return {**params, **ex.params()}

    def _take(
        self,
        user_id: str,
        graph_id: str,
        execution_id: str,
        cap: int | None,
        waiting: int = 0,
        behind_waiters: bool = False,
    ) -> dict[str, Any]:
        """The slot item's update that makes the run a holder: it is one already (ADD to a set is idempotent), or
        there is room below `cap` (None: whatever the count) and, `behind_waiters`, nobody waits for a slot."""

        def adds(ex: Expr) -> list[str]:
            clauses = [f"{ex.n('holders')} {ex.v({execution_id})}"]
            if waiting:
                clauses.append(f"{ex.n('waiting')} {ex.v(waiting)}")
            return clauses

        def room(ex: Expr) -> str:
            holders = ex.n("holders")
            free = f"attribute_not_exists({holders}) OR size({holders}) < {ex.v(cap)}"
            if behind_waiters:  # (DynamoDB refuses redundant parentheses, and unused names)
                queue = ex.n("waiting")
                free = f"({free}) AND (attribute_not_exists({queue}) OR {queue} <= {ex.v(0)})"
            return f"contains({holders}, {ex.v(execution_id)}) OR ({free})"

        return self._slot_update(user_id, graph_id, adds, None if cap is None else room)

    def _waiting_change(self, user_id: str, graph_id: str, change: int) -> dict[str, Any]:
        return self._slot_update(user_id, graph_id, lambda ex: [f"{ex.n('waiting')} {ex.v(change)}"], None)

    def _marker_delete(self, pk: str) -> dict[str, Any]:
        ex = Expr()
        return {
            "TableName": self.table,
            "Key": self._key(pk, keys.SLOT_WAIT),
            "ConditionExpression": f"attribute_exists({ex.n('PK')})",
            **ex.params(),
        }

    def _drop_marker(self, pk: str, user_id: str, graph_id: str) -> bool:
        """Delete a marker and count it out of `waiting`, together (only while it exists)."""
        actions = [{"Delete": self._marker_delete(pk)}, {"Update": self._waiting_change(user_id, graph_id, -1)}]
        return self._retrying(lambda: self._transact_codes(actions)) is None

    # -- holding a slot

    def take_slot(
        self, user_id: str, graph_id: str, execution_id: str, cap: int | None, behind_waiters: bool = False
    ) -> bool:
        """Hold a slot of (user, graph) for the run: there is room below `cap`, or it holds one already (a repeat
        takes nothing more). `cap=None` holds one whatever the count (a run that must hold it: see redrive).
        `behind_waiters` (a start): not while runs wait for a slot, so that they go first."""
        params = self._take(user_id, graph_id, execution_id, cap, behind_waiters=behind_waiters)
        return self._retrying(lambda: self._conditional_update(params)).won

    def release_slot(self, user_id: str, graph_id: str, execution_id: str, while_status: str | None = None) -> Release:
        """Give back the run's slot. `while_status`: only while its META still has that status, checked in the same
        transaction: a stopped or failed run may be going again meanwhile (a resume, a redrive), and keeps it."""
        ex = Expr()
        holders = ex.n("holders")
        update = {
            "TableName": self.table,
            "Key": self._key(keys.user_pk(user_id), keys.slots_sk(graph_id)),
            "UpdateExpression": f"DELETE {holders} {ex.v({execution_id})} "
            f"SET {ex.n('released_at')} = {ex.v(self._now())}",
            "ConditionExpression": f"contains({holders}, {ex.v(execution_id)})",
            **ex.params(),
        }
        if while_status is None:
            done = self._retrying(lambda: self._conditional_update(update))
            left = done.item or {}
        else:
            cx = Expr()
            check = {
                "TableName": self.table,
                "Key": self._key(keys.execution_pk(execution_id), keys.META),
                "ConditionExpression": f"{cx.n('status')} = {cx.v(while_status)}",
                **cx.params(),
            }
            actions = [{"Update": update}, {"ConditionCheck": check}]
            done = Transition(self._retrying(lambda: self._transact_codes(actions)) is None, None)
            left = self._get(keys.user_pk(user_id), keys.slots_sk(graph_id)) or {}  # a transaction returns no item
        return Release(done.won, int(left.get("waiting", 0)))

    def drop_empty_slot(self, user_id: str, graph_id: str, idle_since: str) -> bool:
        """Delete the slot item while nobody holds or waits for a slot and none was given back after `idle_since`
        (a take or a wait writes it again). The give-back leaves it: the graph's next run takes a slot on it for 1
        write unit instead of creating it (2, its index entry too), and the give-back needs no delete (2)."""
        ex = Expr()
        waiting, released = ex.n("waiting"), ex.n("released_at")
        condition = (
            f"attribute_not_exists({ex.n('holders')}) AND (attribute_not_exists({waiting}) OR {waiting} <= {ex.v(0)})"
            f" AND (attribute_not_exists({released}) OR {released} <= {ex.v(idle_since)})"
        )
        pk, sk = keys.user_pk(user_id), keys.slots_sk(graph_id)
        return self._retrying(lambda: self._delete_if(pk, sk, condition, ex))

    def list_slots(self) -> list[SlotRecord]:
        """Every slot item with a holder or a waiter (GSI2 names them, keys only; each is then read consistently)."""
        slots = []
        for key in self._index_query("GSI2", keys.SLOT_ITEMS, "GSI2PK"):
            item = self._get(str(key["PK"]), str(key["SK"]))
            if item is None:
                continue
            slots.append(
                SlotRecord(
                    user_id=str(item["PK"]).removeprefix(keys.user_pk("")),
                    graph_id=str(item["SK"]).removeprefix(keys.SLOTS_PREFIX),
                    holders=frozenset(str(h) for h in item.get("holders") or ()),
                    waiting=int(item.get("waiting", 0)),
                    released_at=None if item.get("released_at") is None else str(item["released_at"]),
                )
            )
        return slots


class Slots(SlotItems):
    """What changes a run's status with its slot: a resume, a run that waits, its admission."""

    def resume_with_slot(self, execution: ExecutionRecord) -> Transition[ExecutionRecord]:
        """TERMINATED -> RUNNING and a slot taken, in one transaction: a stop's give-back cannot slip between them.
        Lost (the run is not TERMINATED): the current record. Raises SlotsFull when no slot is free."""
        execution_id, cap = execution.execution_id, execution.max_concurrent_runs
        assert cap is not None
        ex = Expr()
        meta = self._status_update(
            keys.execution_pk(execution_id),
            keys.META,
            EXECUTION_TRANSITIONS,
            E.RUNNING,
            [E.TERMINATED],
            expr=ex,
            sets=[
                f"{ex.n('started_at')} = if_not_exists({ex.n('started_at')}, {ex.v(self._now())})",
                f"{ex.n('GSI2PK')} = {ex.v(keys.active_shard(execution_id))}",
                f"{ex.n('GSI2SK')} = {ex.v(f'{self._now()}#{execution_id}')}",
            ],
            removes=[ex.n("awaiting_slot")],  # stopped while it waited: resumed, it holds a slot
            history=True,
        )
        slot = self._take(execution.user_id, execution.graph_id, execution_id, cap)
        codes = self._retrying(lambda: self._transact_codes([{"Update": meta}, {"Update": slot}]))
        if codes is None:
            return Transition(True, replace(execution, status=E.RUNNING, awaiting_slot=False))
        if codes[0] == FAILED_CHECK:
            current = self._get(keys.execution_pk(execution_id), keys.META)
            return Transition(False, None if current is None else ExecutionRecord.from_item(current))
        raise SlotsFull(execution.graph_id, cap, execution.status.value)

    # -- waiting for a slot

    def wait_for_slot(self, execution: ExecutionRecord) -> Transition[ExecutionRecord]:
        """INCOMPLETE -> QUEUED for a run over its cap: `awaiting_slot` on its META, its marker (oldest first on
        GSI1) and `waiting` + 1 on the slot item, in one transaction. Won: the record as given, now QUEUED."""
        execution_id, cap = execution.execution_id, execution.max_concurrent_runs
        assert cap is not None
        now = self._now()
        ex = Expr()
        meta = self._status_update(
            keys.execution_pk(execution_id),
            keys.META,
            EXECUTION_TRANSITIONS,
            E.QUEUED,
            [E.INCOMPLETE],
            expr=ex,
            sets=[
                f"{ex.n('awaiting_slot')} = {ex.v(True)}",
                f"{ex.n('GSI2PK')} = {ex.v(keys.active_shard(execution_id))}",
                f"{ex.n('GSI2SK')} = {ex.v(f'{now}#{execution_id}')}",
            ],
            history=True,
        )
        meta["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        since = execution.created_at or now
        marker = {
            "execution_id": execution_id,
            "user_id": execution.user_id,
            "graph_id": execution.graph_id,
            "max_concurrent_runs": cap,
            "created_at": since,
            "GSI1PK": keys.waiting_by_graph(execution.user_id, execution.graph_id),
            "GSI1SK": f"{since}#{execution_id}",
        }
        put = {
            "TableName": self.table,
            "Item": self._key(keys.execution_pk(execution_id), keys.SLOT_WAIT)
            | {k: serialize(v) for k, v in marker.items()},
        }
        counted = self._waiting_change(execution.user_id, execution.graph_id, 1)
        actions = [{"Update": meta}, {"Put": put}, {"Update": counted}]
        failed = self._retrying(lambda: self._transact(actions))
        if failed is None:
            return Transition(True, replace(execution, status=E.QUEUED, awaiting_slot=True))
        return Transition(False, None if failed[0] is None else ExecutionRecord.from_item(failed[0]))

    def admit_waiting(self, execution_id: str) -> AdmitOutcome:
        """Admit a waiting run: a slot taken, its marker deleted and counted out, `awaiting_slot` cleared, in one
        transaction (only while it is QUEUED and waiting). The winner publishes its nodes."""
        pk = keys.execution_pk(execution_id)
        marker = self._get(pk, keys.SLOT_WAIT)
        if marker is None:
            return AdmitOutcome.GONE
        user_id, graph_id, cap = str(marker["user_id"]), str(marker["graph_id"]), int(marker["max_concurrent_runs"])
        mx = Expr()
        meta = {
            "TableName": self.table,
            "Key": self._key(pk, keys.META),
            # updated_at: its nodes go out now, which is what the sweeper's lost-event threshold counts from
            "UpdateExpression": update_expression(
                [f"{mx.n('updated_at')} = {mx.v(self._now())}"], [], [mx.n("awaiting_slot")]
            ),
            "ConditionExpression": f"{mx.n('status')} = {mx.v(E.QUEUED.value)} AND "
            f"attribute_exists({mx.n('awaiting_slot')})",
            **mx.params(),
        }
        actions = [
            {"Update": self._take(user_id, graph_id, execution_id, cap, waiting=-1)},
            {"Delete": self._marker_delete(pk)},
            {"Update": meta},
        ]
        codes = self._retrying(lambda: self._transact_codes(actions))
        if codes is None:
            return AdmitOutcome.ADMITTED
        no_room, marker_gone, not_waiting = (code == FAILED_CHECK for code in codes[:3])
        if marker_gone:
            return AdmitOutcome.GONE  # another admitter won
        if not_waiting:  # stopped or ended while it waited, and its marker was left behind: drop it
            self._drop_marker(pk, user_id, graph_id)
            return AdmitOutcome.GONE
        return AdmitOutcome.FULL if no_room else AdmitOutcome.GONE

    def cancel_wait(self, execution: ExecutionRecord) -> None:
        """A waiting run stopped or ended: its marker goes (counted out), and `awaiting_slot` with it."""
        pk = keys.execution_pk(execution.execution_id)
        self._drop_marker(pk, execution.user_id, execution.graph_id)
        ex = Expr()
        params = {
            "TableName": self.table,
            "Key": self._key(pk, keys.META),
            "UpdateExpression": f"REMOVE {ex.n('awaiting_slot')}",
            "ConditionExpression": f"attribute_exists({ex.n('awaiting_slot')})",
            **ex.params(),
        }
        self._retrying(lambda: self._conditional_update(params))

    def iter_waiting(self, user_id: str, graph_id: str) -> Iterator[str]:
        """The runs of (user, graph) waiting for a slot, oldest first (GSI1: eventually consistent), read a page at
        a time as the caller goes on."""
        ex = Expr()
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": f"{ex.n('GSI1PK')} = {ex.v(keys.waiting_by_graph(user_id, graph_id))}",
            "Limit": WAITING_PAGE,
            **ex.params(),
        }
        while True:
            response = self._call("query", **params)
            for raw in response.get("Items", []):
                item = deserialize_item(raw)
                if item is not None:
                    yield str(item.get("execution_id") or str(item["PK"]).removeprefix("EXEC#"))
            if "LastEvaluatedKey" not in response:
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
