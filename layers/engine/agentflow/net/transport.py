"""An httpx transport that checks every request with the guard before anything connects, then connects to the
checked address only (no second lookup: no DNS rebinding), keeping the URL's name for `Host` and TLS. It is
`httpx2`'s, the HTTP client the openai and anthropic SDKs are built on. The LLM
providers' SDKs get it for a base URL a user gave (a credential's, an `ollama_host`), so a graph cannot aim an SDK
at a private address the operator did not allow (AGENTFLOW_HTTP_ALLOW_HOSTS)."""

from __future__ import annotations

import httpx2

from agentflow.net.guard import check_url
from agentflow.net.policy import HttpPolicy

__all__ = ["GuardedTransport", "guarded_client"]


class GuardedTransport(httpx2.BaseTransport):
    def __init__(self, policy: HttpPolicy) -> None:
        self.policy = policy
        self._inner = httpx2.HTTPTransport(trust_env=False)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        target = check_url(str(request.url), self.policy)  # RequestRefused / RequestFailed before any connect
        if target.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": target.host}
        request.headers["Host"] = request.url.netloc.decode("ascii")
        request.url = request.url.copy_with(host=target.addresses[0])
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def guarded_client(policy: HttpPolicy, guarded: bool, timeout: float) -> httpx2.Client | None:
    """The SDK's HTTP client for an endpoint: guarded for a base URL a user gave, else None (the SDK's own)."""
    return httpx2.Client(transport=GuardedTransport(policy), timeout=timeout) if guarded else None
