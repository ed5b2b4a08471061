"""What the engine needs from the credentials vault: checks at start, and the secrets of one node at run time.
`agentflow.credentials.vault.CredentialVault` provides it; the executor is typed against this Protocol only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from agentflow.credentials.models import Credentials

if TYPE_CHECKING:
    from agentflow.blocks.sdk import Block
    from agentflow.graph import Problem, ValidGraph


class CredentialsPort(Protocol):
    def check_graph(self, user_id: str, graph: ValidGraph) -> list[Problem]:
        """Every credentials problem of a graph a user starts (missing, unknown, another user's, a provider or type
        the block does not accept), each naming its node and pin. Reads metadata only: no secret is decrypted."""
        ...

    def resolve_node(self, user_id: str, block: type[Block], inputs: Mapping[str, Any]) -> dict[str, Credentials]:
        """The credentials of one node execution, by pin, secrets decrypted (a platform key from the environment
        when the node names none and the block's provider has one). Raises BlockError naming the pin when a
        credential named by the node is gone."""
        ...
