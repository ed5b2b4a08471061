"""The LLM settings (README, "Configuration"): the call timeout, the price overrides, and the endpoints the
operator configured (the SDKs' own OPENAI_BASE_URL and ANTHROPIC_BASE_URL, trusted like any operator setting)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agentflow.errors import ConfigurationError
from agentflow.llm.prices import PRICES_SETTING, Price, parse_price_overrides

TIMEOUT_SETTING = "AGENTFLOW_LLM_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 600.0  # AutoGPT's; the node executor's function timeout caps it (template.yaml)


@dataclass(frozen=True)
class LlmSettings:
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    prices: Mapping[str, Price] = field(default_factory=dict)  # overrides of agentflow.llm.prices.PRICES
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None

    @staticmethod
    def from_env(env: Mapping[str, str]) -> LlmSettings:
        raw = env.get(TIMEOUT_SETTING) or ""
        timeout = DEFAULT_TIMEOUT_SECONDS
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                raise ConfigurationError(f"{TIMEOUT_SETTING} must be a number of seconds, got {raw!r}") from None
            if timeout <= 0:
                raise ConfigurationError(f"{TIMEOUT_SETTING} must be more than 0 seconds, got {raw!r}")
        return LlmSettings(
            timeout_seconds=timeout,
            prices=parse_price_overrides(env.get(PRICES_SETTING)),
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
        )
