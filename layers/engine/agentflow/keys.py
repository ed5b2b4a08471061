"""The single-table key layout (docs/architecture.md, "The table's item layout"). Every key the engine writes is
built here."""

from __future__ import annotations

import hashlib

SEQ_WIDTH = 6  # node execution sequence numbers sort as strings


def execution_pk(execution_id: str) -> str:
    return f"EXEC#{execution_id}"


META = "META"  # status, counters, history: kept small, because most node finishes rewrite it
STATS = "STATS"
INPUTS = "INPUTS"
# A recorded graph output was once an item of its own under this prefix; it is now marked on its output node's item
# (docs/architecture.md, "Recorded outputs"). Runs recorded before keep theirs, and are still read.
OUTPUT_PREFIX = "OUT#"


def node_sk(node_id: str, seq: int) -> str:
    return f"NODE#{node_id}#{seq:0{SEQ_WIDTH}d}"


def node_prefix(node_id: str | None = None) -> str:
    return "NODE#" if node_id is None else f"NODE#{node_id}#"


def pins_sk(node_id: str) -> str:
    return f"PINS#{node_id}"


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def graph_sk(graph_id: str) -> str:
    return f"GRAPH#{graph_id}"


def graph_version_sk(graph_id: str, version: int) -> str:
    return f"GRAPH#{graph_id}#V#{version:06d}"


def api_key_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


def graph_versions_prefix(graph_id: str) -> str:
    return f"GRAPH#{graph_id}#V#"


def webhook_pk(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


WEBHOOK = "WEBHOOK"


def webhooks_by_graph(user_id: str, graph_id: str) -> str:
    return f"USER#{user_id}#WEBHOOKS#{graph_id}"


def schedule_pk(schedule_id: str) -> str:
    return f"SCHEDULE#{schedule_id}"


SCHEDULE = "SCHEDULE"
ENABLED_SCHEDULES = "SCHEDULES"  # sparse GSI2 partition of enabled schedules (the local stack fires them)


def schedules_by_user(user_id: str) -> str:
    return f"USER#{user_id}#SCHEDULES"


CREDENTIAL_PREFIX = "CRED#"  # a user's credentials: items of the user's partition (USER#<user_id>)


def credential_sk(credential_id: str) -> str:
    return f"{CREDENTIAL_PREFIX}{credential_id}"


def key_value_sk(scoped_key: str) -> str:
    """A user's key-value item (`agent#<graph id>#<key>` or `global#<key>`), under the user's partition."""
    return f"KV#{scoped_key}"


def idempotency_pk(user_id: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"IDEMP#{user_id}#{digest}"


IDEMPOTENCY = "IDEMPOTENCY"  # sort key of an idempotency key's item (which names its execution)

ACTIVE_SHARDS = 8  # spreads unfinished executions over GSI2 partitions


def active_shard(execution_id: str) -> str:
    """GSI2 partition of an unfinished execution (sparse: removed when the run ends or stops)."""
    digest = int(hashlib.sha256(execution_id.encode()).hexdigest()[:8], 16)
    return f"ACTIVE#{digest % ACTIVE_SHARDS}"


def executions_by_graph(user_id: str, graph_id: str) -> str:
    return f"USER#{user_id}#GRAPH#{graph_id}"


# Concurrency limits (README, "Concurrency limits"): one slot item per (user, graph) under the user's partition,
# and one marker per run waiting for a slot under the run's.
SLOTS_PREFIX = "SLOTS#"
SLOT_ITEMS = "SLOTS"  # sparse GSI2 partition of the slot items (the sweeper reconciles them)
SLOT_WAIT = "SLOTWAIT"  # sort key of a waiting run's marker (under EXEC#<id>)
WAITING_RUNS = "SLOTWAIT"  # sparse GSI2 partition of the waiting markers (the sweeper admits lost wake-ups)


def slots_sk(graph_id: str) -> str:
    return f"{SLOTS_PREFIX}{graph_id}"


def waiting_by_graph(user_id: str, graph_id: str) -> str:
    """GSI1 partition of the runs of a graph waiting for a slot; GSI1SK `<created_at>#<id>` lists them oldest first."""
    return f"USER#{user_id}#SLOTWAIT#{graph_id}"


# Attribute-name prefixes inside PINS and NODE items (pin names are arbitrary strings, so they are suffixes).
COUNTER = "c:"  # PINS: number of deliveries to a pin so far
DELIVERY = "d:"  # PINS: delivery id -> the slot it filled
STATIC = "s:"  # PINS: latest value of a static pin
PIN_VALUE = "i:"  # NODE: a value delivered to this slot, before it is queued
# NODE: the execution of an output node its sender ran, carried on the sender's item in the layout of a NODE item
# (docs/architecture.md, "Output nodes run by their sender")
CARRIED_OUTPUT = "carried_output"


REVIEW_PREFIX = "REVIEW#"  # a node execution's pending human review, in its run's partition


def review_digest(node_id: str, seq: int) -> str:
    return hashlib.sha256(f"{node_id}#{seq}".encode()).hexdigest()[:16]


def review_id(execution_id: str, node_id: str, seq: int) -> str:
    """The public id of a node execution's review: its run's id, then a digest of the node execution (one review
    per node execution, as AutoGPT keys it), so the review is found in its run's partition from its id alone."""
    return f"{execution_id}_{review_digest(node_id, seq)}"


def review_sk(review_id: str) -> str:
    return f"{REVIEW_PREFIX}{review_id.rsplit('_', 1)[-1]}"


def review_execution(review_id: str) -> str:
    return review_id.rsplit("_", 1)[0]


def reviews_waiting(user_id: str) -> str:
    """GSI1 partition of a user's WAITING reviews (sparse: the key is removed when a review is decided)."""
    return f"USER#{user_id}#REVIEWS"
