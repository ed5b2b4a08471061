"""AutoGPT's five LLM blocks (BLOCKS-AGENTS.md §2.3-2.7; README, "LLM blocks"), with their UUIDs, pins, defaults
and yield order, on `agentflow.llm.structured`. The `model` input takes AutoGPT's model names; a node naming an
unknown one is refused when its graph is saved."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockError,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
)
from agentflow.credentials.models import CredentialsMetaInput, CredentialType
from agentflow.llm.models import DEFAULT_MODEL, MODEL_NAMES, PROVIDER_OF, Provider, resolve_model, unknown_model_message

AI_PROVIDERS = tuple(p.value for p in Provider)
MAX_SUMMARY_CHARS = 1_000_000
MAX_SUMMARY_CHUNKS = 100
# Test cases: `mocks["llm_replies"]` are the answers a provider server on 127.0.0.1 gives (text, or {"json": ...}
# sent inside the request's tagged section); the registry's case runner serves them. A case that lists no
# `prompt` output does not check it (it holds a fresh tag per call).
NO_KEY = {"llm_replies": [], "no_credentials": True}


def AICredentialsField() -> Any:
    """AutoGPT's `AICredentials`: an API key of any LLM provider, the provider chosen by `model`. Optional here:
    a node that names none uses the platform's key for its model's provider (OPENAI_API_KEY, ...)."""
    return Field(
        default=None,
        description="API key for the LLM provider (none: the platform's key for the model's provider).",
        json_schema_extra={
            "credentials_provider": list(AI_PROVIDERS),
            "credentials_types": [CredentialType.API_KEY.value],
            "discriminator": "model",
            "discriminator_mapping": dict(PROVIDER_OF),
        },
    )


def ModelField(description: str = "The language model to use.", advanced: bool = False) -> Any:
    return Field(
        default=DEFAULT_MODEL,
        description=description,
        json_schema_extra={"llm_model": True, "enum": list(MODEL_NAMES), "advanced": advanced},
    )


class LlmBlock(Block):
    """What the LLM blocks share: the AI category, the LLM time limit and usage accounting, the model check."""

    categories: ClassVar[frozenset[BlockCategory]] = frozenset({BlockCategory.AI})
    uses_llm: ClassVar[bool] = True

    @classmethod
    def node_problems(cls, input_default: Mapping[str, Any]) -> list[tuple[str, str]]:
        model = input_default.get("model")
        if model is not None and resolve_model(model) is None:
            return [("model", unknown_model_message(model))]
        return []


def _structured(input_data: Any, context: BlockContext, **overrides: Any) -> tuple[Any, list[Any]]:
    from agentflow.llm.structured import StructuredCall, model_of, structured_response  # lazy: the SDK adapters

    fields = {
        name: getattr(input_data, name)
        for name in StructuredCall.__dataclass_fields__
        if name not in ("model", "credentials") and hasattr(input_data, name)
    }
    fields.update(overrides)
    call = StructuredCall(
        model=model_of(input_data.model), credentials=context.credentials.get("credentials"), **fields
    )
    return structured_response(context, call)


class AIStructuredResponseGeneratorBlock(LlmBlock):
    id = "ed55ac19-356e-4243-a6cb-bc599e9b716f"
    description = "Call a Large Language Model (LLM) to generate formatted object based on the given prompt."

    class Input(BlockSchema):
        prompt: str = Field(description="The prompt to send to the language model.")
        expected_format: dict[str, str] = Field(
            description="Expected format of the response: each key with a description of its value. Empty: any text."
        )
        list_result: bool = Field(default=False, description="Whether the response should be a list of objects.")
        model: str = ModelField()
        force_json_output: bool = Field(default=False, description="Ask for pure JSON (no reasoning text around it).")
        credentials: CredentialsMetaInput | None = AICredentialsField()
        sys_prompt: str = Field(default="", description="The system prompt to provide additional context.")
        conversation_history: list[dict[str, Any]] | None = Field(default_factory=list)
        retry: int = Field(default=3, description="Attempts in all, each fed the previous attempt's error.")
        prompt_values: dict[str, Any] = Field(default_factory=dict, description="Values for {{key}} in the prompt.")
        max_tokens: int | None = Field(default=None, description="The most tokens to generate.")
        compress_prompt_to_fit: bool = Field(default=True, description="Truncate a prompt too long for the model.")
        ollama_host: str = Field(default="localhost:11434", description="Ollama host for local models.")

    class Output(BlockSchemaOutput):
        response: Any = Field(description="The response object (a list of objects with list_result).")
        prompt: list[Any] = Field(description="The messages sent to the model.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        response, prompt = _structured(input_data, context)
        yield "response", response
        yield "prompt", prompt

    test_cases = (
        BlockTestCase(
            {"prompt": "User prompt", "expected_format": {"key1": "value1", "key2": "value2"}},
            [("response", {"key1": "key1Value", "key2": "key2Value"})],
            "AutoGPT's case: the tagged JSON answer, checked against the expected keys",
            mocks={"llm_replies": [{"json": {"key1": "key1Value", "key2": "key2Value"}}]},
        ),
        BlockTestCase(
            {"prompt": "Tell me", "expected_format": {}},
            [("response", {"response": "plain text"}), ("prompt", [{"role": "user", "content": "Tell me"}])],
            "no expected format: the text as is",
            mocks={"llm_replies": ["plain text"]},
        ),
        BlockTestCase(
            {"prompt": "p", "expected_format": {"a": "x"}, "retry": 2},
            [("response", {"a": 1})],
            "an answer without the section is fed back and asked again",
            mocks={"llm_replies": ["no json here", {"json": {"a": 1}}]},
        ),
        BlockTestCase(
            {"prompt": "p", "expected_format": {"a": "x"}, "force_json_output": True, "retry": 1},
            [],
            "pure JSON mode: a missing key fails once the attempts are used up",
            error="Missing keys: {'a'}",
            mocks={"llm_replies": ['{"b": 1}']},
        ),
        BlockTestCase(
            {"prompt": "p", "expected_format": {}, "retry": 0},
            [],
            "retry 0 calls nothing",
            error="retry is 0",
            mocks={"llm_replies": []},
        ),
    )


class AITextGeneratorBlock(LlmBlock):
    id = "1f292d4a-41a4-4977-9684-7c8d560b9f91"
    description = "Call a Large Language Model (LLM) to generate a string based on the given prompt."

    class Input(BlockSchema):
        prompt: str = Field(description="The prompt to send to the language model. Use {{key}} for prompt_values.")
        model: str = ModelField()
        credentials: CredentialsMetaInput | None = AICredentialsField()
        sys_prompt: str = Field(default="", description="The system prompt to provide additional context.")
        retry: int = Field(default=3, description="Attempts in all.")
        prompt_values: dict[str, Any] = Field(default_factory=dict, description="Values for {{key}} in the prompt.")
        ollama_host: str = Field(default="localhost:11434", description="Ollama host for local models.")
        max_tokens: int | None = Field(default=None, description="The most tokens to generate.")

    class Output(BlockSchemaOutput):
        response: str = Field(description="The model's answer.")
        prompt: list[Any] = Field(description="The messages sent to the model.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        response, prompt = _structured(input_data, context, expected_format={})
        yield "response", response["response"]
        yield "prompt", prompt

    test_cases = (
        BlockTestCase(
            {"prompt": "Say hi to {{name}}", "prompt_values": {"name": "Ann"}},
            [("response", "Hi Ann!"), ("prompt", [{"role": "user", "content": "Say hi to Ann"}])],
            "prompt_values fill {{key}}",
            mocks={"llm_replies": ["Hi Ann!"]},
        ),
        BlockTestCase(
            {"prompt": "User prompt", "sys_prompt": "Be brief"},
            [
                ("response", "Response text"),
                ("prompt", [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "User prompt"}]),
            ],
            "AutoGPT's case, with a system prompt",
            mocks={"llm_replies": ["Response text"]},
        ),
        BlockTestCase(
            {"prompt": "x", "model": "gpt-9"},
            [],
            "an unknown model",
            error="unknown LLM model 'gpt-9'",
            mocks={"llm_replies": []},
        ),
        BlockTestCase(
            {"prompt": "x"},
            [],
            "no key anywhere: says how to add one",
            error="agentflow credentials add --user <you> --provider openai",
            mocks=NO_KEY,
        ),
    )


class SummaryStyle(StrEnum):
    CONCISE = "concise"
    DETAILED = "detailed"
    BULLET_POINTS = "bullet points"
    NUMBERED_LIST = "numbered list"


class AITextSummarizerBlock(LlmBlock):
    id = "a0a69be1-4528-491c-a85a-a4ab6873e3f0"
    description = "Utilize a Large Language Model (LLM) to summarize a long text."
    categories = frozenset({BlockCategory.AI, BlockCategory.TEXT})

    class Input(BlockSchema):
        text: str = Field(description="The text to summarize.")
        model: str = ModelField()
        focus: str = Field(default="general information", description="The topic to focus on in the summary.")
        style: SummaryStyle = Field(default=SummaryStyle.CONCISE, description="The style of the summary.")
        credentials: CredentialsMetaInput | None = AICredentialsField()
        max_tokens: int = Field(default=4096, ge=1, description="Words per chunk (never sent to the model).")
        chunk_overlap: int = Field(default=100, ge=0, description="Words shared by consecutive chunks.")
        ollama_host: str = Field(default="localhost:11434", description="Ollama host for local models.")

    class Output(BlockSchemaOutput):
        summary: str = Field(description="The final summary.")
        prompt: list[Any] = Field(description="The messages of the last call.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        summary, prompt = self._summarize(input_data, context, input_data.text, input_data.style, input_data.focus)
        yield "summary", summary
        yield "prompt", prompt

    def _summarize(
        self, data: Input, context: BlockContext, text: str, style: SummaryStyle, focus: str
    ) -> tuple[str, list[Any]]:
        words = text[:MAX_SUMMARY_CHARS].split()
        size = data.max_tokens
        step = max(1, size - data.chunk_overlap)
        chunks = [" ".join(words[k : k + size]) for k in range(0, len(words), step)][:MAX_SUMMARY_CHUNKS]
        summaries: list[str] = []
        prompt: list[Any] = []
        for chunk in chunks or [""]:
            ask = f"Summarize the following text in a {style.value} style, focusing on {focus}:\n\n```{chunk}```"
            response, prompt = _structured(
                data,
                context,
                prompt=ask,
                expected_format={"summary": "The summary of the given text."},
                retry=3,
                max_tokens=None,  # the input's max_tokens counts words per chunk
            )
            summaries.append(self._text(response, "summary"))
        joined = "\n\n".join(summaries)
        if len(joined.split()) <= size:
            ask = (
                "Combine the following summaries into one coherent summary, in a "
                f"{style.value} style, focusing on {focus}:\n\n```{joined}```"
            )
            response, prompt = _structured(
                data,
                context,
                prompt=ask,
                expected_format={"final_summary": "The final summary."},
                retry=3,
                max_tokens=None,
            )
            return self._text(response, "final_summary"), prompt
        return self._summarize(data, context, joined, SummaryStyle.CONCISE, "general information")

    @staticmethod
    def _text(response: Any, key: str) -> str:
        value = response.get(key) if isinstance(response, dict) else None
        if not isinstance(value, str):
            raise BlockError(f"the model's {key!r} is not text: {value!r}"[:500])
        return value

    test_cases = (
        BlockTestCase(
            {"text": "Lorem ipsum dolor sit amet", "max_tokens": 10, "chunk_overlap": 0},
            [("summary", "Final summary of a long text")],
            "AutoGPT's case: one chunk, then the final summary",
            mocks={
                "llm_replies": [{"json": {"summary": "s"}}, {"json": {"final_summary": "Final summary of a long text"}}]
            },
        ),
        BlockTestCase(
            {"text": " ".join(f"w{i}" for i in range(25)), "max_tokens": 10, "chunk_overlap": 2},
            [("summary", "all")],
            "25 words, 10 per chunk, 2 shared: 4 chunks (steps of 8), then the final call",
            mocks={
                "llm_replies": [{"json": {"summary": f"s{i}"}} for i in range(4)] + [{"json": {"final_summary": "all"}}]
            },
        ),
        BlockTestCase(
            {"text": "some text"},
            [],
            "a summary that is not text fails",
            error="is not text",
            mocks={"llm_replies": [{"json": {"summary": 5}}]},
        ),
    )


class AIConversationBlock(LlmBlock):
    id = "32a87eab-381e-4dd4-bdb8-4c47151be35a"
    description = "A block that facilitates multi-turn conversations with a Large Language Model (LLM)."

    class Input(BlockSchema):
        prompt: str = Field(default="", description="The prompt to send to the language model.")
        messages: list[Any] = Field(description="List of messages in the conversation.")
        model: str = ModelField()
        credentials: CredentialsMetaInput | None = AICredentialsField()
        max_tokens: int | None = Field(default=None, description="The most tokens to generate.")
        ollama_host: str = Field(default="localhost:11434", description="Ollama host for local models.")

    class Output(BlockSchemaOutput):
        response: str = Field(description="The model's response to the conversation.")
        prompt: list[Any] = Field(description="The messages sent to the model.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        has_message = any(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m["content"].strip()
            for m in input_data.messages
        )
        if not has_message and not input_data.prompt.strip():
            raise BlockError("Cannot call LLM with no messages and no prompt: give messages or a prompt")
        response, prompt = _structured(
            input_data, context, conversation_history=input_data.messages, expected_format={}
        )
        yield "response", response["response"]
        yield "prompt", prompt

    test_cases = (
        BlockTestCase(
            {"messages": [{"role": "user", "content": "Hi"}]},
            [("response", "Hello"), ("prompt", [{"role": "user", "content": "Hi"}])],
            "the conversation as the history",
            mocks={"llm_replies": ["Hello"]},
        ),
        BlockTestCase(
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}], "prompt": "Go"},
            [
                ("response", "Going"),
                (
                    "prompt",
                    [
                        {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hey"},
                        {"role": "user", "content": "Go"},
                    ],
                ),
            ],
            "a prompt follows the messages",
            mocks={"llm_replies": ["Going"]},
        ),
        BlockTestCase(
            {"messages": []}, [], "nothing to send", error="Cannot call LLM with no messages", mocks={"llm_replies": []}
        ),
    )


class AIListGeneratorBlock(LlmBlock):
    id = "9c0b0450-d199-458b-a731-072189dd6593"
    description = "Generate a list of values based on the given prompt using a Large Language Model (LLM)."
    categories = frozenset({BlockCategory.AI, BlockCategory.TEXT})

    class Input(BlockSchema):
        focus: str | None = Field(default=None, description="The focus of the list to generate.")
        source_data: str | None = Field(default=None, description="The data to generate the list from.")
        model: str = ModelField(advanced=True)
        credentials: CredentialsMetaInput | None = AICredentialsField()
        max_retries: int = Field(default=3, ge=1, le=5, description="Attempts to get a valid list.")
        force_json_output: bool = Field(default=False, description="Ask for pure JSON (no reasoning text).")
        max_tokens: int | None = Field(default=None, description="The most tokens to generate.")
        ollama_host: str = Field(default="localhost:11434", description="Ollama host for local models.")

    class Output(BlockSchemaOutput):
        generated_list: list[str] = Field(description="The generated list.")
        list_item: str = Field(description="Each item of the list, one at a time.")
        prompt: list[Any] = Field(description="The messages sent to the model.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        focus, source = input_data.focus, input_data.source_data
        if focus:
            ask = f"Generate a list with the following focus:\n<focus>\n\n{focus}\n\n</focus>"
        elif source:
            ask = "Extract the main focus of the source data below into a list of key points."
        else:
            ask = "Generate a random list."
        if source:
            ask += (
                "\n\nUse only the data in this section; do not invent data that is not in it:\n"
                f"<source_data>\n{source}\n</source_data>"
            )
        else:
            ask += "\n\nThere is no source data: invent the data for the list."
        expected = {"list": "A JSON array containing the generated string values"}
        if input_data.force_json_output:
            expected = {"reasoning": "... (optional)", **expected}
        response, prompt = _structured(
            input_data,
            context,
            prompt=ask,
            sys_prompt="You generate lists. Answer with a JSON array of strings under the key `list`.",
            expected_format=expected,
            retry=input_data.max_retries,
        )
        generated = response.get("list", response) if isinstance(response, dict) else response
        if not isinstance(generated, list):
            raise BlockError(f"the model's list is not a list: {type(generated).__name__}")
        yield "generated_list", generated
        yield "prompt", prompt
        for item in generated:
            yield "list_item", item

    test_cases = (
        BlockTestCase(
            {"focus": "planets of the solar system"},
            [("generated_list", ["Mercury", "Venus"]), ("list_item", "Mercury"), ("list_item", "Venus")],
            "the list, then each item",
            mocks={"llm_replies": [{"json": {"list": ["Mercury", "Venus"]}}]},
        ),
        BlockTestCase(
            {"source_data": "a, b"},
            [],
            "a list that is not a list fails",
            error="is not a list",
            mocks={"llm_replies": [{"json": {"list": "a, b"}}]},
        ),
        BlockTestCase(
            {"focus": "numbers"},
            [],
            "items must be text (list[str])",
            error="generated_list",
            mocks={"llm_replies": [{"json": {"list": [1, 2]}}]},
        ),
    )
