"""The store: the only code that speaks DynamoDB. Its parts, each a module of this package, share one metered
table (`dynamo`); `Store` is all of them together (docs/architecture.md, "The store").

- `dynamo`: plumbing (values, expressions, metered calls, pagination, transactions);
- `transitions`: status writes, each one conditional write built from the state-machine tables;
- `runs`: a run's other items (creation, reads, results, costs, sweeper queries, retention);
- `deliveries`: values delivered to node slots, idempotently;
- `catalog`: graphs, versions, webhooks, schedules and API keys;
- `credentials`: users' credentials (metadata, and the secret only encrypted);
- `key_values`: users' key-value items (the persistence blocks);
- `records`: the typed records the store returns (executions, node executions, pins, graph heads, a whole run),
  so the item layout is known only here. Webhooks, schedules and API keys are still plain dicts of attributes.
"""

from __future__ import annotations

from agentflow.store.catalog import Catalog, InvalidCursor
from agentflow.store.credentials import CredentialItems, CredentialMeta, SealedCredential
from agentflow.store.deliveries import Deliveries, Delivery
from agentflow.store.dynamo import Item, ItemTooLarge, Meter, Transition, dynamodb_client
from agentflow.store.endings import ChildQueue
from agentflow.store.key_values import KeyValueItems
from agentflow.store.port import RunStatePort
from agentflow.store.records import (
    ExecutionPage,
    ExecutionRecord,
    GraphHead,
    GraphVersion,
    NodeRecord,
    PinsRecord,
    RecordedOutput,
    RunSnapshot,
)
from agentflow.store.redrives import Redrives
from agentflow.store.reviews import ReviewItems
from agentflow.store.runs import RunItems
from agentflow.store.slots import Slots
from agentflow.store.transitions import QueueOutcome, QueueResult

__all__ = [
    "ChildQueue",
    "CredentialItems",
    "CredentialMeta",
    "Delivery",
    "ExecutionPage",
    "ExecutionRecord",
    "GraphHead",
    "GraphVersion",
    "InvalidCursor",
    "Item",
    "ItemTooLarge",
    "Meter",
    "NodeRecord",
    "PinsRecord",
    "QueueOutcome",
    "QueueResult",
    "RecordedOutput",
    "RunSnapshot",
    "RunStatePort",
    "SealedCredential",
    "Store",
    "Transition",
    "dynamodb_client",
]


class Store(Redrives, ReviewItems, Slots, RunItems, Deliveries, Catalog, CredentialItems, KeyValueItems):
    """Every part of the store over one table, one meter and one clock."""


def _satisfies(store: Store) -> RunStatePort:
    return store  # mypy: Store provides everything the engine needs
