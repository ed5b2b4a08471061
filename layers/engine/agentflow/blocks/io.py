"""Graph inputs and outputs (README, "Built-in blocks"). These use a plain BlockSchema output: no `error` pin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import AliasChoices, Field, WithJsonSchema

from agentflow.blocks.sdk import BlockCategory, BlockContext, BlockSchema, BlockTestCase, BlockType, PureBlock

__all__ = [
    "AgentDropdownInputBlock",
    "AgentInputBlock",
    "AgentLongTextInputBlock",
    "AgentNumberInputBlock",
    "AgentOutputBlock",
    "AgentShortTextInputBlock",
    "AgentToggleInputBlock",
]

_IO_INPUT = frozenset({BlockCategory.INPUT, BlockCategory.BASIC})

ShortText = Annotated[str, WithJsonSchema({"type": "string", "format": "short-text"})]
LongText = Annotated[str, WithJsonSchema({"type": "string", "format": "long-text"})]


class AgentInputBlock(PureBlock):
    id = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b"
    description = "A graph input: yields the run's input of the same name, or the default value."
    categories = _IO_INPUT
    block_type = BlockType.INPUT
    static_output = True

    class Input(BlockSchema):
        name: str = Field(description="The graph input key.")
        value: Any = Field(default=None, description="Default value, replaced by the run's input of this name.")
        title: str | None = Field(default=None, description="Title shown to users.")
        description: str | None = Field(default=None, description="Description shown to users.")
        advanced: bool = Field(default=False, description="Show this input in the advanced section only.")
        secret: bool = Field(default=False, description="Drop the value when the graph is exported.")

    class Output(BlockSchema):
        result: Any = Field(description="The input value.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        # No value, no yield: nodes that need this input simply never run.
        if input_data.value is not None:
            yield "result", input_data.value

    test_cases: ClassVar[tuple[BlockTestCase, ...]] = (
        BlockTestCase({"name": "x", "value": 5}, [("result", 5)], "yields the value"),
        BlockTestCase({"name": "x", "value": {"a": [1, 2]}}, [("result", {"a": [1, 2]})], "any JSON passes"),
        BlockTestCase({"name": "x"}, [], "no value yields nothing"),
        BlockTestCase({"name": "x", "value": None}, [], "explicit null is 'not given'"),
        BlockTestCase({"name": "x", "value": 0}, [("result", 0)], "falsy values are yielded"),
        BlockTestCase({"value": 1}, [], "name is required", error="missing required input 'name'"),
    )


class AgentShortTextInputBlock(AgentInputBlock):
    id = "7fcd3bcb-8e1b-4e69-903d-32d3d4a92158"
    description = "A one-line text graph input."

    class Input(AgentInputBlock.Input):
        value: ShortText | None = Field(default=None, description="Default text.")

    class Output(BlockSchema):
        result: str = Field(description="The text.")

    test_cases = (
        BlockTestCase({"name": "q", "value": "hi"}, [("result", "hi")], "yields the text"),
        BlockTestCase({"name": "q", "value": 5}, [("result", "5")], "non-strings are JSON-encoded"),
        BlockTestCase({"name": "q", "value": ""}, [("result", "")], "empty text is still a value"),
        BlockTestCase({"name": "q"}, [], "no value yields nothing"),
    )


class AgentLongTextInputBlock(AgentInputBlock):
    id = "90a56ffb-7024-4b2b-ab50-e26c5e5ab8ba"
    description = "A multi-line text graph input."

    class Input(AgentInputBlock.Input):
        value: LongText | None = Field(default=None, description="Default text.")

    class Output(BlockSchema):
        result: str = Field(description="The text.")

    test_cases = (
        BlockTestCase({"name": "doc", "value": "a\nb\n"}, [("result", "a\nb\n")], "keeps newlines"),
        BlockTestCase({"name": "doc", "value": {"k": 1}}, [("result", '{"k": 1}')], "dicts become JSON text"),
        BlockTestCase({"name": "doc"}, [], "no value yields nothing"),
    )


class AgentNumberInputBlock(AgentInputBlock):
    id = "96dae2bb-97a2-41c2-bd2f-13a3b5a8ea98"
    description = "An integer graph input."

    class Input(AgentInputBlock.Input):
        value: int | None = Field(default=None, description="Default number.")

    class Output(BlockSchema):
        result: int = Field(description="The number.")

    test_cases = (
        BlockTestCase({"name": "n", "value": 42}, [("result", 42)], "yields the number"),
        BlockTestCase({"name": "n", "value": "3.9"}, [("result", 3)], "numeric strings truncate"),
        BlockTestCase({"name": "n", "value": 7.8}, [("result", 7)], "floats truncate"),
        BlockTestCase({"name": "n", "value": "abc"}, [("result", 0)], "non-numeric text becomes 0"),
        BlockTestCase({"name": "n"}, [], "no value yields nothing"),
    )


class AgentDropdownInputBlock(AgentInputBlock):
    id = "655d6fdf-a334-421c-b733-520549c07cd1"
    description = "A graph input chosen from a list of options."

    class Input(AgentInputBlock.Input):
        value: str | None = Field(default=None, description="Default choice.")
        options: list[Any] = Field(
            default_factory=list,
            validation_alias=AliasChoices("options", "placeholder_values"),
            description="The choices offered (the block itself does not check membership).",
        )

    class Output(BlockSchema):
        result: str = Field(description="The choice.")

    test_cases = (
        BlockTestCase({"name": "c", "value": "a", "options": ["a", "b"]}, [("result", "a")], "yields the choice"),
        BlockTestCase({"name": "c", "value": "z", "options": ["a"]}, [("result", "z")], "membership unchecked"),
        BlockTestCase(
            {"name": "c", "value": "b", "placeholder_values": ["a", "b"]}, [("result", "b")], "legacy options key"
        ),
        BlockTestCase({"name": "c", "options": ["a"]}, [], "no value yields nothing"),
    )


class AgentToggleInputBlock(AgentInputBlock):
    id = "cbf36ab5-df4a-43b6-8a7f-f7ed8652116e"
    description = "An on/off graph input."

    class Input(AgentInputBlock.Input):
        value: bool = Field(default=False, description="Default state.")

    class Output(BlockSchema):
        result: bool = Field(description="The state.")

    test_cases = (
        BlockTestCase({"name": "t"}, [("result", False)], "always yields, False by default"),
        BlockTestCase({"name": "t", "value": None}, [("result", False)], "null means the default"),
        BlockTestCase({"name": "t", "value": True}, [("result", True)], "yields True"),
        BlockTestCase({"name": "t", "value": "TRUE"}, [("result", True)], "'true' in any case"),
        BlockTestCase({"name": "t", "value": "yes"}, [("result", False)], "other strings are False"),
        BlockTestCase({"name": "t", "value": 1}, [("result", True)], "numbers use truthiness"),
    )


class AgentOutputBlock(PureBlock):
    id = "363ae599-353e-4804-937e-b2ee3cef3da4"
    description = "A graph output: records the value under its name, optionally formatted with a template."
    categories = frozenset({BlockCategory.OUTPUT, BlockCategory.BASIC})
    block_type = BlockType.OUTPUT
    static_output = True

    class Input(BlockSchema):
        value: Any = Field(default=None, description="The value to record.")
        name: str = Field(description="The graph output key.")
        title: str | None = Field(default=None, description="Title shown to users.")
        description: str | None = Field(default=None, description="Description shown to users.")
        format: str = Field(default="", description="Jinja2 template; the value is available as {{ <name> }}.")
        escape_html: bool = Field(default=False, description="Escape HTML in the formatted output.")
        advanced: bool = Field(default=False, description="Show this output in the advanced section only.")
        secret: bool = Field(default=False, description="Treat the value as secret.")

    class Output(BlockSchema):
        output: Any = Field(description="The value, or the formatted text.")
        name: Any = Field(description="The output's name (only when no format is given).")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        if not input_data.format:
            yield "output", input_data.value
            yield "name", input_data.name
            return
        # imported here: Jinja2 costs every cold start ~0.1-0.25 s, and most runs render no template
        from agentflow.blocks.text_format import TemplateRenderError, render_template

        try:
            text = render_template(
                input_data.format, {input_data.name: input_data.value}, escape_html=input_data.escape_html
            )
        except TemplateRenderError as exc:
            # AutoGPT reports a bad template in the output itself, with Jinja's own message, instead of failing.
            text = f"Error: {exc.__cause__ or exc}, {input_data.value}"
        yield "output", text

    test_cases = (
        BlockTestCase({"name": "Output", "value": 42}, [("output", 42), ("name", "Output")], "output, then name"),
        BlockTestCase({"name": "Output"}, [("output", None), ("name", "Output")], "no value yields null"),
        BlockTestCase(
            {"name": "Output", "value": 42, "format": "Result: {{ Output }}"},
            [("output", "Result: 42")],
            "format yields only the rendered text",
        ),
        BlockTestCase(
            {"name": "Output", "value": "<b>", "format": "{{ Output }}", "escape_html": True},
            [("output", "&lt;b&gt;")],
            "escape_html escapes",
        ),
        BlockTestCase(
            {"name": "Output", "value": "<b>", "format": "{{ Output }}"},
            [("output", "<b>")],
            "no escaping by default",
        ),
        BlockTestCase(
            {"name": "Output", "value": 1, "format": "{{ Output | nosuch }}"},
            [("output", "Error: No filter named 'nosuch'., 1")],
            "a bad template is reported in the output",
        ),
        BlockTestCase(
            {"name": "Output", "value": 1, "format": "{{ other }}!"}, [("output", "!")], "other names are undefined"
        ),
    )
