"""The LLM model catalogue against AutoGPT's `LlmModel` (counts, sizes, providers), the lookup rules an export's
model value goes through, AutoGPT's max-tokens rule, and the price list and its override setting."""

from __future__ import annotations

import json
from collections import Counter
from enum import StrEnum

import pytest

from agentflow.errors import ConfigurationError
from agentflow.llm import models, prices
from agentflow.llm.models import (
    DEFAULT_MODEL,
    LEGACY_MODELS,
    MODEL_NAMES,
    MODELS,
    PROVIDER_OF,
    ModelInfo,
    Provider,
    effective_max_tokens,
    max_output_tokens,
    resolve_model,
    unknown_model_message,
)
from agentflow.llm.prices import (
    PRICES,
    PRICES_SETTING,
    Price,
    cost_usd,
    is_priced,
    parse_price_overrides,
    price_for,
)

# -- the catalogue -----------------------------------------------------------------------------------------

# Counted by hand in AutoGPT's enum (open_router: openai 2, google 9, mistralai 5, cohere 6, deepseek 2,
# perplexity 4, nousresearch 2, amazon 3, microsoft 2, gryphe 1, meta-llama 2, x-ai 7, moonshotai 5, qwen 2, z-ai 12).
EXPECTED_COUNTS = {
    "openai": 15,
    "anthropic": 10,
    "aiml_api": 5,
    "groq": 2,
    "ollama": 5,
    "open_router": 64,
    "llama_api": 4,
    "v0": 3,
}


def test_counts_per_provider() -> None:
    assert Counter(str(info.provider) for info in MODELS.values()) == EXPECTED_COUNTS
    assert len(MODELS) == len(MODEL_NAMES) == sum(EXPECTED_COUNTS.values()) == 108
    assert {str(p) for p in Provider} == set(EXPECTED_COUNTS)


def test_open_router_counts_per_creator() -> None:
    creators = Counter(name.split("/", 1)[0] for name, p in PROVIDER_OF.items() if p == "open_router")
    assert creators == {
        "openai": 2,
        "google": 9,
        "mistralai": 5,
        "cohere": 6,
        "deepseek": 2,
        "perplexity": 4,
        "nousresearch": 2,
        "amazon": 3,
        "microsoft": 2,
        "gryphe": 1,
        "meta-llama": 2,
        "x-ai": 7,
        "moonshotai": 5,
        "qwen": 2,
        "z-ai": 12,
    }


@pytest.mark.parametrize(
    ("name", "provider", "context", "max_out"),
    [
        ("gpt-5.2-2025-12-11", "openai", 400_000, 128_000),
        ("gpt-4.1-2025-04-14", "openai", 1_047_576, 32_768),
        ("o1-mini", "openai", 128_000, 65_536),
        ("gpt-4-turbo", "openai", 128_000, 4_096),
        ("claude-opus-4-1-20250805", "anthropic", 200_000, 32_000),
        ("claude-opus-4-7", "anthropic", 200_000, 128_000),
        ("claude-3-haiku-20240307", "anthropic", 200_000, 4_096),
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "aiml_api", 128_000, None),
        ("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "aiml_api", 131_000, 2_000),
        ("Qwen/Qwen2.5-72B-Instruct-Turbo", "aiml_api", 32_000, 8_000),
        ("llama-3.1-8b-instant", "groq", 128_000, 8_192),
        ("llama3.1:405b", "ollama", 8_192, None),
        ("dolphin-mistral:latest", "ollama", 32_768, None),
        ("google/gemini-2.5-flash", "open_router", 1_048_576, 65_535),
        ("mistralai/mistral-large-2512", "open_router", 262_144, None),
        ("perplexity/sonar", "open_router", 127_000, 8_000),
        ("meta-llama/llama-4-maverick", "open_router", 1_048_576, 1_000_000),
        ("x-ai/grok-4-fast", "open_router", 2_000_000, 30_000),
        ("x-ai/grok-4.20-multi-agent", "open_router", 2_000_000, 100_000),
        ("moonshotai/kimi-k2", "open_router", 131_000, 131_000),
        ("z-ai/glm-4.5-air:free", "open_router", 131_072, 96_000),
        ("z-ai/glm-5", "open_router", 80_000, 80_000),
        ("Llama-3.3-70B-Instruct", "llama_api", 128_000, 4_028),
        ("v0-1.5-lg", "v0", 512_000, 64_000),
    ],
)
def test_spot_checks(name: str, provider: str, context: int, max_out: int | None) -> None:
    assert MODELS[name] == ModelInfo(name, Provider(provider), context, max_out)
    assert PROVIDER_OF[name] == provider


def test_names_are_keys_order_and_default() -> None:
    assert all(MODELS[name].name == name for name in MODEL_NAMES)
    assert MODEL_NAMES[:2] == ("o3-mini", "o3-2025-04-16")
    assert MODEL_NAMES[-1] == "v0-1.0-md"
    assert DEFAULT_MODEL in MODELS
    # JSON-ready: plain strings, so a schema's discriminator_mapping serializes as AutoGPT's.
    mapping = json.loads(json.dumps(dict(PROVIDER_OF)))
    assert mapping["claude-sonnet-4-6"] == "anthropic"
    assert all(type(value) is str for value in PROVIDER_OF.values())
    assert set(PROVIDER_OF) == set(MODELS)


def test_exactly_these_models_state_no_max_output() -> None:
    unstated = {name for name, info in MODELS.items() if info.max_output_tokens is None}
    assert unstated == {
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "meta-llama/Llama-3.2-3B-Instruct-Turbo",
        "llama3.3",
        "llama3.2",
        "llama3",
        "llama3.1:405b",
        "dolphin-mistral:latest",
        "mistralai/mistral-large-2512",
        "mistralai/mistral-medium-3.1",
        "mistralai/codestral-2508",
    }


def test_legacy_mapping() -> None:
    assert len(LEGACY_MODELS) == 24
    assert LEGACY_MODELS["claude-3-haiku-20240307"] == "claude-haiku-4-5-20251001"
    assert LEGACY_MODELS["z-ai/glm-4.5-air:free"] == "z-ai/glm-4.7-flash"
    aiml = {name for name, target in LEGACY_MODELS.items() if target == "meta-llama/Llama-3.3-70B-Instruct-Turbo"}
    assert aiml == {name for name, p in PROVIDER_OF.items() if p == "aiml_api"} - {
        "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    }
    # Every replacement is a member that is not itself retired: one step always lands.
    for target in LEGACY_MODELS.values():
        assert target in MODELS
        assert target not in LEGACY_MODELS


# -- resolve_model --------------------------------------------------------------------------------------------


class _Model(StrEnum):
    GPT_4O = "gpt-4o"


class _HasValue:
    value = "claude-sonnet-4-6"


def test_resolve_members_and_enum_like_values() -> None:
    assert resolve_model("gpt-4o") is MODELS["gpt-4o"]
    assert resolve_model(_Model.GPT_4O) is MODELS["gpt-4o"]
    assert resolve_model(_HasValue()) is MODELS["claude-sonnet-4-6"]


def test_members_win_over_legacy_keys() -> None:
    for name in ("claude-3-haiku-20240307", "o1", "gpt-4-turbo", "claude-sonnet-4-20250514"):
        assert name in LEGACY_MODELS
        assert resolve_model(name) is MODELS[name]
    assert resolve_model("anthropic/claude-opus-4-20250514") is MODELS["claude-opus-4-20250514"]


def test_legacy_values_resolve_to_their_replacement_once_retired(monkeypatch: pytest.MonkeyPatch) -> None:
    # AutoGPT's newest versions drop these members; the catalogue then only has to lose them.
    retired = {"claude-3-haiku-20240307", "o1", "moonshotai/kimi-k2"}
    monkeypatch.setattr(models, "MODELS", {k: v for k, v in MODELS.items() if k not in retired})
    assert resolve_model("claude-3-haiku-20240307") is MODELS["claude-haiku-4-5-20251001"]
    assert resolve_model("o1") is MODELS["o3-2025-04-16"]
    assert resolve_model("moonshotai/kimi-k2") is MODELS["moonshotai/kimi-k2.6"]
    # prefix stripped, then legacy-mapped
    assert resolve_model("anthropic/claude-3-haiku-20240307") is MODELS["claude-haiku-4-5-20251001"]
    assert resolve_model("openrouter/moonshotai/kimi-k2") is MODELS["moonshotai/kimi-k2.6"]


def test_resolve_strips_one_prefix_segment() -> None:
    assert resolve_model("anthropic/claude-sonnet-4-6") is MODELS["claude-sonnet-4-6"]
    assert resolve_model("openrouter/google/gemini-2.5-pro") is MODELS["google/gemini-2.5-pro"]
    assert resolve_model("a/b/claude-sonnet-4-6") is None  # one segment only
    assert resolve_model("google/gemini-2.5-pro") is MODELS["google/gemini-2.5-pro"]  # a member is not stripped


@pytest.mark.parametrize("value", ["gpt-99", "", "/", "anthropic/", "GPT-4O", " gpt-4o", None, 4, ["gpt-4o"]])
def test_resolve_unknown_and_non_strings(value: object) -> None:
    assert resolve_model(value) is None


def test_unknown_model_message() -> None:
    message = unknown_model_message("gpt4o")
    assert "'gpt4o'" in message
    assert "'gpt-4o'" in message
    assert message.index("'gpt-4o'") < message.index("README")
    assert '"LLM blocks"' in message
    assert "did you mean" not in unknown_model_message("zzzzzzzzzzzzzzzzzzzzzzzz")
    assert "42" in unknown_model_message(42)


# -- max tokens ---------------------------------------------------------------------------------------------------

_SMALL = ModelInfo("small", Provider.OLLAMA, 8_192, None)


def test_max_output_tokens() -> None:
    assert max_output_tokens(MODELS["gpt-4o"]) == 16_384
    assert max_output_tokens(_SMALL) == 32_768


def test_effective_max_tokens() -> None:
    gpt4o = MODELS["gpt-4o"]  # 128000 / 16384
    assert effective_max_tokens(gpt4o, None, 1_000) == 16_384
    # unset: the model's own max, even above 32768 (gpt-5.2: 400000 / 128000)
    assert effective_max_tokens(MODELS["gpt-5.2-2025-12-11"], None, 1_000) == 128_000
    assert effective_max_tokens(gpt4o, 500, 1_000) == 500
    assert effective_max_tokens(gpt4o, 100_000, 1_000) == 16_384  # capped at the model's max
    assert effective_max_tokens(gpt4o, 0, 1_000) == 16_384  # 0 counts as unset, as in AutoGPT
    assert effective_max_tokens(gpt4o, None, 120_000) == 8_000  # what the context window leaves
    assert effective_max_tokens(gpt4o, None, 200_000) == 1  # input beyond the window
    assert effective_max_tokens(gpt4o, None, 128_000) == 1
    # unstated max output: 32768, still bounded by the window
    assert effective_max_tokens(MODELS["mistralai/mistral-large-2512"], None, 0) == 32_768
    assert effective_max_tokens(_SMALL, None, 1_000) == 7_192
    assert effective_max_tokens(_SMALL, 50_000, 0) == 8_192


# -- prices -------------------------------------------------------------------------------------------------------


def test_every_price_names_a_known_model() -> None:
    assert set(PRICES) <= set(MODELS)
    priced = Counter(PROVIDER_OF[name] for name in PRICES)
    assert priced == {"openai": 15, "anthropic": 10, "groq": 2, "ollama": 5}
    for name, price in PRICES.items():
        assert price.input_per_million >= 0 and price.output_per_million >= 0
        assert (price == Price(0.0, 0.0)) == (PROVIDER_OF[name] == "ollama")


@pytest.mark.parametrize(
    ("name", "price"),
    [
        ("gpt-5.2-2025-12-11", Price(1.75, 14.0)),
        ("gpt-4o-mini", Price(0.15, 0.60)),
        ("o1", Price(15.0, 60.0)),
        ("claude-sonnet-4-6", Price(3.0, 15.0)),
        ("claude-opus-4-1-20250805", Price(15.0, 75.0)),
        ("claude-opus-4-7", Price(5.0, 25.0)),
        ("claude-haiku-4-5-20251001", Price(1.0, 5.0)),
        ("llama-3.3-70b-versatile", Price(0.59, 0.79)),
    ],
)
def test_list_prices(name: str, price: Price) -> None:
    assert PRICES[name] == price


def test_cost_usd() -> None:
    assert cost_usd("gpt-4o", 1000, 500) == 0.0075
    assert cost_usd("gpt-5.2-2025-12-11", 1_000_000, 1_000_000) == 15.75
    assert cost_usd("gpt-5-nano-2025-08-07", 1, 1) == 0.00000045
    assert cost_usd("gpt-4o", 0, 0) == 0.0
    assert cost_usd("llama3.3", 10_000, 10_000) == 0.0
    assert is_priced("llama3.3")
    # unpriced: OpenRouter and friends, and unknown names
    for name in ("google/gemini-2.5-pro", "Llama-3.3-70B-Instruct", "v0-1.5-md", "my-model"):
        assert not is_priced(name)
        assert price_for(name) is None
        assert cost_usd(name, 1_000, 1_000) == 0.0


def test_overrides_win_and_may_name_unknown_models() -> None:
    overrides = parse_price_overrides(
        json.dumps({"gpt-4o": {"input": 1, "output": 2}, "my-local-model": {"input": 0.5, "output": 0}})
    )
    assert overrides == {"gpt-4o": Price(1.0, 2.0), "my-local-model": Price(0.5, 0.0)}
    assert price_for("gpt-4o", overrides) == Price(1.0, 2.0)
    assert cost_usd("gpt-4o", 1000, 500, overrides) == 0.002
    assert is_priced("my-local-model", overrides)
    assert cost_usd("my-local-model", 2_000_000, 9, overrides) == 1.0
    assert price_for("gpt-4o-mini", overrides) == PRICES["gpt-4o-mini"]  # others keep the list price
    assert price_for("gpt-4o", {}) == PRICES["gpt-4o"]


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_overrides(text: str | None) -> None:
    assert parse_price_overrides(text) == {}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("{not json", "JSON"),
        ("[]", "object"),
        ('"gpt-4o"', "object"),
        ('{"gpt-4o": 1.5}', "'gpt-4o'"),
        ('{"gpt-4o": {"input": 1}}', "'output'"),
        ('{"gpt-4o": {"input": 1, "output": 2, "cached": 0.1}}', "'cached'"),
        ('{"gpt-4o": {"inputs": 1, "output": 2}}', "'input'"),
        ('{"gpt-4o": {"input": "1", "output": 2}}', "'input'"),
        ('{"gpt-4o": {"input": true, "output": 2}}', "'input'"),
        ('{"gpt-4o": {"input": null, "output": 2}}', "'input'"),
        ('{"gpt-4o": {"input": 1, "output": -2}}', "'output'"),
        ('{"gpt-4o": {"input": NaN, "output": 2}}', "'input'"),
        ('{"gpt-4o": {"input": 1, "output": Infinity}}', "'output'"),
        ('{"": {"input": 1, "output": 2}}', "empty"),
    ],
)
def test_bad_overrides_are_refused(text: str, names: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_price_overrides(text)
    message = str(raised.value)
    assert PRICES_SETTING in message
    assert names in message
    if text.startswith('{"gpt-4o"'):  # a bad entry names its model
        assert "'gpt-4o'" in message


def test_setting_name() -> None:
    assert PRICES_SETTING == "AGENTFLOW_LLM_PRICES"
    assert prices.PRICES is PRICES
