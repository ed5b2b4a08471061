"""The LLM model catalogue (README, "LLM blocks"): every value of AutoGPT's `LlmModel` enum, with its provider,
context window and max output tokens, so exported graphs naming any of them validate and run, and the LLM blocks
can size a request the way AutoGPT does. Also the retired-value mapping of AutoGPT's newest versions
(`LEGACY_MODEL_MAPPINGS`) and the lookup rules an export's model value goes through (`resolve_model`).

Transcribed from AutoGPT's `blocks/llm.py` (`LlmModel`, `MODEL_METADATA`); its sizes are decimal (200K is 200000,
not 204800; 2M is 2000000) wherever it does not spell the exact power of two."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "DEFAULT_MODEL",
    "LEGACY_MODELS",
    "MODELS",
    "MODEL_NAMES",
    "PROVIDER_OF",
    "ModelInfo",
    "Provider",
    "effective_max_tokens",
    "max_output_tokens",
    "resolve_model",
    "unknown_model_message",
]


class Provider(StrEnum):
    """The provider names AutoGPT's credentials carry (and `agentflow.credentials.platform` keys on)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GROQ = "groq"
    OLLAMA = "ollama"
    OPEN_ROUTER = "open_router"
    AIML_API = "aiml_api"
    LLAMA_API = "llama_api"
    V0 = "v0"


# AutoGPT's fallback when a model states no max output (`max_output_tokens or 2**15`).
DEFAULT_MAX_OUTPUT_TOKENS = 32768


@dataclass(frozen=True)
class ModelInfo:
    name: str
    provider: Provider
    context_window: int
    max_output_tokens: int | None  # None: unstated (AutoGPT then uses 32768)


_OA, _AN, _AI, _GQ, _OL, _OR, _LA, _V0 = (
    Provider.OPENAI,
    Provider.ANTHROPIC,
    Provider.AIML_API,
    Provider.GROQ,
    Provider.OLLAMA,
    Provider.OPEN_ROUTER,
    Provider.LLAMA_API,
    Provider.V0,
)

# In the document's (and AutoGPT's) order: schemas list the enum in this order.
_CATALOGUE: tuple[ModelInfo, ...] = (
    # openai
    ModelInfo("o3-mini", _OA, 200_000, 100_000),
    ModelInfo("o3-2025-04-16", _OA, 200_000, 100_000),
    ModelInfo("o1", _OA, 200_000, 100_000),
    ModelInfo("o1-mini", _OA, 128_000, 65_536),
    ModelInfo("gpt-5.2-2025-12-11", _OA, 400_000, 128_000),
    ModelInfo("gpt-5.1-2025-11-13", _OA, 400_000, 128_000),
    ModelInfo("gpt-5-2025-08-07", _OA, 400_000, 128_000),
    ModelInfo("gpt-5-mini-2025-08-07", _OA, 400_000, 128_000),
    ModelInfo("gpt-5-nano-2025-08-07", _OA, 400_000, 128_000),
    ModelInfo("gpt-5-chat-latest", _OA, 400_000, 16_384),
    ModelInfo("gpt-4.1-2025-04-14", _OA, 1_047_576, 32_768),
    ModelInfo("gpt-4.1-mini-2025-04-14", _OA, 1_047_576, 32_768),
    ModelInfo("gpt-4o-mini", _OA, 128_000, 16_384),
    ModelInfo("gpt-4o", _OA, 128_000, 16_384),
    ModelInfo("gpt-4-turbo", _OA, 128_000, 4_096),
    # anthropic (every context window 200K)
    ModelInfo("claude-opus-4-1-20250805", _AN, 200_000, 32_000),
    ModelInfo("claude-opus-4-20250514", _AN, 200_000, 32_000),
    ModelInfo("claude-sonnet-4-20250514", _AN, 200_000, 64_000),
    ModelInfo("claude-opus-4-5-20251101", _AN, 200_000, 64_000),
    ModelInfo("claude-sonnet-4-5-20250929", _AN, 200_000, 64_000),
    ModelInfo("claude-haiku-4-5-20251001", _AN, 200_000, 64_000),
    ModelInfo("claude-opus-4-6", _AN, 200_000, 128_000),
    ModelInfo("claude-opus-4-7", _AN, 200_000, 128_000),
    ModelInfo("claude-sonnet-4-6", _AN, 200_000, 64_000),
    ModelInfo("claude-3-haiku-20240307", _AN, 200_000, 4_096),
    # aiml_api
    ModelInfo("Qwen/Qwen2.5-72B-Instruct-Turbo", _AI, 32_000, 8_000),
    ModelInfo("nvidia/llama-3.1-nemotron-70b-instruct", _AI, 128_000, 40_000),
    ModelInfo("meta-llama/Llama-3.3-70B-Instruct-Turbo", _AI, 128_000, None),
    ModelInfo("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", _AI, 131_000, 2_000),
    ModelInfo("meta-llama/Llama-3.2-3B-Instruct-Turbo", _AI, 128_000, None),
    # groq
    ModelInfo("llama-3.3-70b-versatile", _GQ, 128_000, 32_768),
    ModelInfo("llama-3.1-8b-instant", _GQ, 128_000, 8_192),
    # ollama (local server; the context window is the server's default, not the model's)
    ModelInfo("llama3.3", _OL, 8_192, None),
    ModelInfo("llama3.2", _OL, 8_192, None),
    ModelInfo("llama3", _OL, 8_192, None),
    ModelInfo("llama3.1:405b", _OL, 8_192, None),
    ModelInfo("dolphin-mistral:latest", _OL, 32_768, None),
    # open_router
    ModelInfo("openai/gpt-oss-120b", _OR, 131_072, 131_072),
    ModelInfo("openai/gpt-oss-20b", _OR, 131_072, 32_768),
    ModelInfo("google/gemini-2.5-pro-preview-03-25", _OR, 1_048_576, 65_536),
    ModelInfo("google/gemini-2.5-pro", _OR, 1_048_576, 65_536),
    ModelInfo("google/gemini-3.1-pro-preview", _OR, 1_048_576, 65_536),
    ModelInfo("google/gemini-3-flash-preview", _OR, 1_048_576, 65_536),
    ModelInfo("google/gemini-2.5-flash", _OR, 1_048_576, 65_535),
    ModelInfo("google/gemini-2.0-flash-001", _OR, 1_048_576, 8_192),
    ModelInfo("google/gemini-3.1-flash-lite-preview", _OR, 1_048_576, 65_536),
    ModelInfo("google/gemini-2.5-flash-lite-preview-06-17", _OR, 1_048_576, 65_535),
    ModelInfo("google/gemini-2.0-flash-lite-001", _OR, 1_048_576, 8_192),
    ModelInfo("mistralai/mistral-nemo", _OR, 128_000, 4_096),
    ModelInfo("mistralai/mistral-large-2512", _OR, 262_144, None),
    ModelInfo("mistralai/mistral-medium-3.1", _OR, 131_072, None),
    ModelInfo("mistralai/mistral-small-3.2-24b-instruct", _OR, 131_072, 131_072),
    ModelInfo("mistralai/codestral-2508", _OR, 256_000, None),
    ModelInfo("cohere/command-r-08-2024", _OR, 128_000, 4_096),
    ModelInfo("cohere/command-r-plus-08-2024", _OR, 128_000, 4_096),
    ModelInfo("cohere/command-a-03-2025", _OR, 256_000, 8_192),
    ModelInfo("cohere/command-a-translate-08-2025", _OR, 128_000, 8_192),
    ModelInfo("cohere/command-a-reasoning-08-2025", _OR, 256_000, 32_768),
    ModelInfo("cohere/command-a-vision-07-2025", _OR, 128_000, 8_192),
    ModelInfo("deepseek/deepseek-chat", _OR, 64_000, 2_048),
    ModelInfo("deepseek/deepseek-r1-0528", _OR, 163_840, 163_840),
    ModelInfo("perplexity/sonar", _OR, 127_000, 8_000),
    ModelInfo("perplexity/sonar-pro", _OR, 200_000, 8_000),
    ModelInfo("perplexity/sonar-reasoning-pro", _OR, 128_000, 8_000),
    ModelInfo("perplexity/sonar-deep-research", _OR, 128_000, 16_000),
    ModelInfo("nousresearch/hermes-3-llama-3.1-405b", _OR, 131_000, 4_096),
    ModelInfo("nousresearch/hermes-3-llama-3.1-70b", _OR, 12_288, 12_288),
    ModelInfo("amazon/nova-lite-v1", _OR, 300_000, 5_120),
    ModelInfo("amazon/nova-micro-v1", _OR, 128_000, 5_120),
    ModelInfo("amazon/nova-pro-v1", _OR, 300_000, 5_120),
    ModelInfo("microsoft/wizardlm-2-8x22b", _OR, 65_536, 4_096),
    ModelInfo("microsoft/phi-4", _OR, 16_384, 16_384),
    ModelInfo("gryphe/mythomax-l2-13b", _OR, 4_096, 4_096),
    ModelInfo("meta-llama/llama-4-scout", _OR, 131_072, 131_072),
    ModelInfo("meta-llama/llama-4-maverick", _OR, 1_048_576, 1_000_000),
    ModelInfo("x-ai/grok-3", _OR, 131_072, 131_072),
    ModelInfo("x-ai/grok-4", _OR, 256_000, 256_000),
    ModelInfo("x-ai/grok-4-fast", _OR, 2_000_000, 30_000),
    ModelInfo("x-ai/grok-4.1-fast", _OR, 2_000_000, 30_000),
    ModelInfo("x-ai/grok-4.20", _OR, 2_000_000, 100_000),
    ModelInfo("x-ai/grok-4.20-multi-agent", _OR, 2_000_000, 100_000),
    ModelInfo("x-ai/grok-code-fast-1", _OR, 256_000, 10_000),
    ModelInfo("moonshotai/kimi-k2", _OR, 131_000, 131_000),
    ModelInfo("moonshotai/kimi-k2-0905", _OR, 262_144, 262_144),
    ModelInfo("moonshotai/kimi-k2.5", _OR, 262_144, 262_144),
    ModelInfo("moonshotai/kimi-k2.6", _OR, 262_144, 262_144),
    ModelInfo("moonshotai/kimi-k2-thinking", _OR, 262_144, 262_144),
    ModelInfo("qwen/qwen3-235b-a22b-thinking-2507", _OR, 262_144, 262_144),
    ModelInfo("qwen/qwen3-coder", _OR, 262_144, 262_144),
    ModelInfo("z-ai/glm-4-32b", _OR, 128_000, 128_000),
    ModelInfo("z-ai/glm-4.5", _OR, 131_072, 98_304),
    ModelInfo("z-ai/glm-4.5-air", _OR, 131_072, 98_304),
    ModelInfo("z-ai/glm-4.5-air:free", _OR, 131_072, 96_000),
    ModelInfo("z-ai/glm-4.5v", _OR, 65_536, 16_384),
    ModelInfo("z-ai/glm-4.6", _OR, 204_800, 204_800),
    ModelInfo("z-ai/glm-4.6v", _OR, 131_072, 131_072),
    ModelInfo("z-ai/glm-4.7", _OR, 202_752, 65_535),
    ModelInfo("z-ai/glm-4.7-flash", _OR, 202_752, 202_752),
    ModelInfo("z-ai/glm-5", _OR, 80_000, 80_000),
    ModelInfo("z-ai/glm-5-turbo", _OR, 202_752, 131_072),
    ModelInfo("z-ai/glm-5v-turbo", _OR, 202_752, 131_072),
    # llama_api (all 128K/4028, AutoGPT's own figure)
    ModelInfo("Llama-4-Scout-17B-16E-Instruct-FP8", _LA, 128_000, 4_028),
    ModelInfo("Llama-4-Maverick-17B-128E-Instruct-FP8", _LA, 128_000, 4_028),
    ModelInfo("Llama-3.3-8B-Instruct", _LA, 128_000, 4_028),
    ModelInfo("Llama-3.3-70B-Instruct", _LA, 128_000, 4_028),
    # v0
    ModelInfo("v0-1.5-md", _V0, 128_000, 64_000),
    ModelInfo("v0-1.5-lg", _V0, 512_000, 64_000),
    ModelInfo("v0-1.0-md", _V0, 128_000, 64_000),
)


def _index(catalogue: tuple[ModelInfo, ...]) -> dict[str, ModelInfo]:
    index = {info.name: info for info in catalogue}
    if len(index) != len(catalogue):  # a transcription slip would silently drop a model
        raise AssertionError("duplicate model names in the LLM catalogue")
    return index


MODELS: Mapping[str, ModelInfo] = MappingProxyType(_index(_CATALOGUE))
MODEL_NAMES: tuple[str, ...] = tuple(info.name for info in _CATALOGUE)
DEFAULT_MODEL = "gpt-5.2-2025-12-11"

# model value -> provider value: the credentials field's `discriminator_mapping`, JSON-ready (plain strings).
PROVIDER_OF: Mapping[str, str] = MappingProxyType({info.name: str(info.provider) for info in _CATALOGUE})

_AIML_TARGET = "meta-llama/Llama-3.3-70B-Instruct-Turbo"

# AutoGPT's LEGACY_MODEL_MAPPINGS (newest versions, migration 20260512120000_retire_deprecated_llm_models): the
# value it rewrites a retired model to. Every key is still a member of the enum this catalogue transcribes, and
# a member takes precedence: `resolve_model` returns the member itself and uses this only for values that are not
# members (so dropping a member later makes its replacement take over, with no other change).
LEGACY_MODELS: Mapping[str, str] = MappingProxyType(
    {
        "claude-3-haiku-20240307": "claude-haiku-4-5-20251001",
        "claude-opus-4-20250514": "claude-opus-4-7",
        "claude-opus-4-1-20250805": "claude-opus-4-7",
        "claude-sonnet-4-20250514": "claude-sonnet-4-6",
        "gpt-4-turbo": "gpt-4.1-2025-04-14",
        "o1": "o3-2025-04-16",
        "o1-mini": "o3-mini",
        "google/gemini-2.5-pro-preview-03-25": "google/gemini-2.5-pro",
        "google/gemini-2.5-flash-lite-preview-06-17": "google/gemini-2.5-flash",
        "cohere/command-r-08-2024": "cohere/command-a-03-2025",
        "cohere/command-r-plus-08-2024": "cohere/command-a-03-2025",
        "mistralai/mistral-nemo": "mistralai/mistral-small-3.2-24b-instruct",
        "microsoft/wizardlm-2-8x22b": "microsoft/phi-4",
        "moonshotai/kimi-k2": "moonshotai/kimi-k2.6",
        "moonshotai/kimi-k2-0905": "moonshotai/kimi-k2.6",
        "z-ai/glm-4-32b": "z-ai/glm-4.6",
        "z-ai/glm-4.5": "z-ai/glm-4.6",
        "z-ai/glm-4.5-air": "z-ai/glm-4.7-flash",
        "z-ai/glm-4.5-air:free": "z-ai/glm-4.7-flash",
        "z-ai/glm-4.5v": "z-ai/glm-4.6v",
        # "the four other AI/ML models"
        "Qwen/Qwen2.5-72B-Instruct-Turbo": _AIML_TARGET,
        "nvidia/llama-3.1-nemotron-70b-instruct": _AIML_TARGET,
        "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo": _AIML_TARGET,
        "meta-llama/Llama-3.2-3B-Instruct-Turbo": _AIML_TARGET,
    }
)


def _lookup(name: str) -> ModelInfo | None:
    # Read the module globals at call time: a member wins over a legacy key of the same name.
    info = MODELS.get(name)
    if info is not None:
        return info
    replacement = LEGACY_MODELS.get(name)
    return None if replacement is None else MODELS.get(replacement)


def resolve_model(value: object) -> ModelInfo | None:
    """A model value as exports carry it: a member; else a legacy value (its replacement); else a value containing
    '/' retried with its first segment stripped (`anthropic/claude-sonnet-4-6` -> `claude-sonnet-4-6`), then that
    legacy-mapped; else None. An enum member's `.value` is accepted too; non-strings -> None."""
    value = getattr(value, "value", value)
    if not isinstance(value, str):
        return None
    info = _lookup(value)
    if info is None and "/" in value:
        # One segment only, as AutoGPT's `_missing_`: `openrouter/google/x` -> `google/x`.
        info = _lookup(value.split("/", 1)[1])
    return info


def unknown_model_message(value: object) -> str:
    """For validation errors: names the value and suggests the closest known names, and where the list is."""
    raw = getattr(value, "value", value)
    text = raw if isinstance(raw, str) else repr(raw)
    message = f"unknown LLM model {text!r}"
    close = difflib.get_close_matches(text, MODEL_NAMES, n=3) if isinstance(raw, str) else []
    if close:
        message += "; did you mean " + ", ".join(repr(name) for name in close) + "?"
    return message + ' (the known models are listed in README, "LLM blocks")'


def max_output_tokens(info: ModelInfo) -> int:
    """The model's max output tokens, or AutoGPT's 32768 when unstated."""
    return info.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS


def effective_max_tokens(info: ModelInfo, requested: int | None, estimated_input_tokens: int) -> int:
    """AutoGPT's `llm_call` rule: max(1, min(max(ctx - est_input, 0), model_max_out or 32768,
    requested or model_max_out or 32768)). A `requested` of 0 counts as unset, as in AutoGPT."""
    model_max = max_output_tokens(info)
    available = max(info.context_window - estimated_input_tokens, 0)
    return max(1, min(available, model_max, requested or model_max))
