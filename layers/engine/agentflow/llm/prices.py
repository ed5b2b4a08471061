"""LLM token prices (README, "LLM blocks"): an estimate of what a call cost in USD, for run reports and usage
stats. Each price is the provider's list price for standard, non-batch, non-cached tokens as of 2026, per 1M
tokens; override with AGENTFLOW_LLM_PRICES. Not a bill: caching, batching, tiers and price changes are ignored.

Why these figures: AutoGPT charges credits (1 credit = $0.01) at about 1.5x the provider's price (`TOKEN_COST`,
e.g. gpt-5.2 263/2100 credits per 1M -> $1.75/$14.00; claude-haiku-4-5 150/750 -> $1/$5); the port has no
credits, so it keeps the provider's own price. Models without a well-known list price (OpenRouter's, AI/ML API's,
Llama API's, v0's) are unpriced: they cost 0.0 and `is_priced` says False. Ollama runs locally, so it is free."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agentflow.errors import ConfigurationError
from agentflow.llm.models import MODELS, Provider

__all__ = [
    "PRICES",
    "PRICES_SETTING",
    "Price",
    "cost_usd",
    "is_priced",
    "parse_price_overrides",
    "price_for",
]

PRICES_SETTING = "AGENTFLOW_LLM_PRICES"


@dataclass(frozen=True)
class Price:
    input_per_million: float  # USD per 1M input (prompt) tokens
    output_per_million: float  # USD per 1M output (completion) tokens


_SONNET = Price(3.0, 15.0)
_OPUS_4 = Price(15.0, 75.0)
_OPUS_4_5 = Price(5.0, 25.0)
_GPT_5 = Price(1.25, 10.0)
_SMALL_REASONING = Price(1.10, 4.40)

_LISTED: dict[str, Price] = {
    # openai
    "gpt-5.2-2025-12-11": Price(1.75, 14.0),
    "gpt-5.1-2025-11-13": _GPT_5,
    "gpt-5-2025-08-07": _GPT_5,
    "gpt-5-mini-2025-08-07": Price(0.25, 2.0),
    "gpt-5-nano-2025-08-07": Price(0.05, 0.40),
    "gpt-5-chat-latest": _GPT_5,
    "gpt-4.1-2025-04-14": Price(2.0, 8.0),
    "gpt-4.1-mini-2025-04-14": Price(0.40, 1.60),
    "gpt-4o": Price(2.50, 10.0),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4-turbo": Price(10.0, 30.0),
    "o3-2025-04-16": Price(2.0, 8.0),
    "o3-mini": _SMALL_REASONING,
    "o1": Price(15.0, 60.0),
    "o1-mini": _SMALL_REASONING,
    # anthropic
    "claude-opus-4-1-20250805": _OPUS_4,
    "claude-opus-4-20250514": _OPUS_4,
    "claude-opus-4-5-20251101": _OPUS_4_5,
    "claude-opus-4-6": _OPUS_4_5,
    "claude-opus-4-7": _OPUS_4_5,
    "claude-sonnet-4-20250514": _SONNET,
    "claude-sonnet-4-5-20250929": _SONNET,
    "claude-sonnet-4-6": _SONNET,
    "claude-haiku-4-5-20251001": Price(1.0, 5.0),
    "claude-3-haiku-20240307": Price(0.25, 1.25),
    # groq
    "llama-3.3-70b-versatile": Price(0.59, 0.79),
    "llama-3.1-8b-instant": Price(0.05, 0.08),
}
# Ollama: a local server, free (priced at 0, unlike an unpriced model).
_LISTED.update({name: Price(0.0, 0.0) for name, info in MODELS.items() if info.provider is Provider.OLLAMA})

PRICES: Mapping[str, Price] = MappingProxyType(_LISTED)


def _bad(detail: str) -> ConfigurationError:
    return ConfigurationError(
        f'{PRICES_SETTING}: {detail} (expected JSON {{"<model>": {{"input": <USD per 1M>, "output": <USD per 1M>}}}})'
    )


def _usd(model: str, field: str, value: object) -> float:
    # bool is an int in Python, but `true` is no price.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"model {model!r}: {field!r} must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise _bad(f"model {model!r}: {field!r} must be a finite, non-negative number, not {value!r}")
    return float(value)


def parse_price_overrides(text: str | None) -> dict[str, Price]:
    """The setting's JSON: {"<model>": {"input": <usd per 1M>, "output": <usd per 1M>}, ...}; None/"" -> {}.
    Any other shape raises ConfigurationError naming the setting and the bad model key or field. Unknown model
    names are allowed: a user may price an OpenAI-compatible server's own model."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad(f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _bad(f"must be a JSON object, not {type(data).__name__}")
    prices: dict[str, Price] = {}
    for model, entry in data.items():
        if not model.strip():
            raise _bad("a model name is empty")
        if not isinstance(entry, dict):
            raise _bad(f"model {model!r}: must be an object with 'input' and 'output', not {entry!r}")
        missing = sorted({"input", "output"} - entry.keys())
        extra = sorted(entry.keys() - {"input", "output"})
        if missing:
            raise _bad(f"model {model!r}: missing {', '.join(map(repr, missing))}")
        if extra:  # a typo ("inputs") would otherwise be ignored silently
            raise _bad(f"model {model!r}: unknown field(s) {', '.join(map(repr, extra))}")
        prices[model] = Price(_usd(model, "input", entry["input"]), _usd(model, "output", entry["output"]))
    return prices


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price of a model (its exact, resolved name): an override first, then the built-in list; None: unpriced."""
    if overrides and model in overrides:
        return overrides[model]
    return PRICES.get(model)


def is_priced(model: str, overrides: Mapping[str, Price] | None = None) -> bool:
    return price_for(model, overrides) is not None


def cost_usd(model: str, input_tokens: int, output_tokens: int, overrides: Mapping[str, Price] | None = None) -> float:
    """(in * p_in + out * p_out) / 1e6, rounded to 8 decimals; 0.0 when unpriced."""
    price = price_for(model, overrides)
    if price is None:
        return 0.0
    total = input_tokens * price.input_per_million + output_tokens * price.output_per_million
    return round(total / 1_000_000, 8)
