"""The credentials routes (README, "Credentials"): a user creates, lists, reads and deletes their own credentials.
A secret goes in once, encrypted before it is stored, and never comes back out: every answer is metadata only.
Another user's credential answers 404 exactly like one that does not exist."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from agentflow.api import models as m
from agentflow.api.common import Deps, _check_id, _ok, created, ok
from agentflow.api.errors import invalid, not_found
from agentflow.credentials.validation import CredentialInputError, NewCredential
from agentflow.credentials.vault import CredentialVault
from agentflow.errors import ConfigurationError
from agentflow.store import CredentialMeta


def view(meta: CredentialMeta) -> m.CredentialOut:
    return m.CredentialOut(
        id=meta.credential_id,
        provider=meta.provider,
        type=meta.type,
        title=meta.title,
        host=meta.host,
        base_url=meta.base_url,
        created_at=meta.created_at,
    )


def vault_of(deps: Deps) -> CredentialVault:
    vault = deps.engine.credentials
    if not isinstance(vault, CredentialVault):
        raise ConfigurationError(
            "the API's engine has no credentials vault (agentflow.runtime.build_runtime makes one)"
        )
    return vault


def new_credential(body: m.CredentialIn) -> NewCredential:
    return NewCredential(
        provider=body.provider,
        type=body.type,
        title=body.title,
        api_key=body.api_key,
        username=body.username,
        password=body.password,
        host=body.host,
        headers=body.headers,
        base_url=body.base_url,
    )


def router(deps: Deps) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.post(
        "/credentials",
        summary="Store a credential (encrypted); its secret is never shown again",
        responses=created(m.CredentialOut),
    )
    def create_credential(body: m.CredentialIn) -> Response[m.CredentialOut]:
        try:
            meta = vault_of(deps).create(deps.user(), new_credential(body))
        except CredentialInputError as exc:
            details = [{"field": f"body.{name}", "message": message} for name, message in exc.problems]
            raise invalid(str(exc), details) from None
        return _ok(view(meta), 201)

    @r.get("/credentials", summary="Your credentials (metadata only)", responses=ok(m.CredentialList))
    def list_credentials() -> m.CredentialList:
        return m.CredentialList(credentials=[view(c) for c in vault_of(deps).list(deps.user())])

    @r.get("/credentials/<credential_id>", summary="One credential (metadata only)", responses=ok(m.CredentialOut))
    def get_credential(credential_id: str) -> m.CredentialOut:
        _check_id("credentials", credential_id)
        meta = vault_of(deps).get(deps.user(), credential_id)
        if meta is None:
            raise not_found("credentials", credential_id)
        return view(meta)

    @r.delete("/credentials/<credential_id>", summary="Delete a credential", responses=ok(m.CredentialDeleted))
    def delete_credential(credential_id: str) -> m.CredentialDeleted:
        _check_id("credentials", credential_id)
        if not vault_of(deps).delete(deps.user(), credential_id):
            raise not_found("credentials", credential_id)
        return m.CredentialDeleted(id=credential_id, deleted=True)

    return r
