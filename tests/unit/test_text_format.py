"""The sandboxed template engine (README, "Built-in blocks")."""

from __future__ import annotations

import threading
import time

import pytest

from agentflow.blocks.text_format import MAX_RANGE, TemplateRenderError, TextFormatter, render_template


def render(template: str, escape_html: bool = False, **values: object) -> str:
    return render_template(template, values, escape_html=escape_html)


def test_renders_values() -> None:
    assert render("Hello {{ name }}, you are {{ age }}", name="Bob", age=30) == "Hello Bob, you are 30"
    assert render("{% for x in xs %}[{{ x }}]{% endfor %}", xs=[1, 2]) == "[1][2]"
    assert render("{{ d.a }} {{ d['b'] }}", d={"a": 1, "b": 2}) == "1 2"


def test_undefined_renders_empty() -> None:
    assert render("<{{ missing }}>") == "<>"
    assert render("{% if missing %}yes{% else %}no{% endif %}") == "no"


def test_one_trailing_newline_is_dropped() -> None:
    assert render("a\n") == "a"
    assert render("a\n\n") == "a\n"


def test_escape_html() -> None:
    assert render("{{ v }}", v="<b>&") == "<b>&"
    escaped = render("{{ v }}", escape_html=True, v="<b>&")
    assert escaped == "&lt;b&gt;&amp;"
    assert type(escaped) is str


@pytest.mark.parametrize("name", ["pprint", "tojson", "urlize", "xmlattr"])
def test_unsafe_filters_are_removed(name: str) -> None:
    with pytest.raises(TemplateRenderError, match=f"No filter named '{name}'"):
        render(f"{{{{ v|{name} }}}}", v={"a": 1})


def test_safe_filters_remain() -> None:
    assert render("{{ xs|join(',') }}|{{ s|upper }}|{{ xs|length }}", xs=["a", "b"], s="x") == "a,b|X|2"


@pytest.mark.parametrize("name", ["lipsum", "dict", "cycler", "joiner", "namespace"])
def test_globals_are_removed(name: str) -> None:
    # Removed globals are undefined: calling one fails, printing one renders nothing.
    assert render(f"{{{{ {name} }}}}") == ""
    with pytest.raises(TemplateRenderError):
        render(f"{{{{ {name}() }}}}")


def test_format_filter_is_replaced() -> None:
    assert render('{{ p|format("%.2f") }}', p=3.14159) == "3.14"
    assert render('{{ p|format("%.1f") }}', p="2.25") == "2.2"
    assert render("{{ p|format }}", p="as is") == "as is"
    with pytest.raises(TemplateRenderError, match="could not convert string to float"):
        render('{{ p|format("%.2f") }}', p="abc")


def test_range_is_capped() -> None:
    assert render("{{ range(3)|list }}") == "[0, 1, 2]"
    assert render(f"{{{{ range({MAX_RANGE})|length }}}}") == str(MAX_RANGE)
    with pytest.raises(TemplateRenderError, match="unsafe template: range"):
        render(f"{{{{ range({MAX_RANGE + 1})|length }}}}")
    with pytest.raises(TemplateRenderError, match="unsafe template"):
        render("{% for i in range(0, 100000, 2) %}{% endfor %}")


@pytest.mark.parametrize(
    "expression", ["2 ** 1001", "1001 ** 2", "(-1001) ** 2", "2 ** -1001", "2.0 ** 1000.5", "x ** 2", "2 ** x"]
)
def test_power_guard(expression: str) -> None:
    with pytest.raises(TemplateRenderError, match=r"'\*\*' operands"):
        render(f"{{{{ {expression} }}}}", x=5000)


def test_power_within_limits() -> None:
    assert render("{{ 2 ** 10 }}") == "1024"
    assert render("{{ 1000 ** 2 }}") == "1000000"
    assert render("{{ x ** 3 }}", x=-3) == "-27"


def test_sequence_repetition_guard() -> None:
    assert len(render("{{ 'ab' * 5000 }}")) == 10_000
    assert render("{{ ([1] * 3)|length }}") == "3"
    assert render("{{ 3 * 4 }}") == "12"
    for template in ("{{ 'ab' * 5001 }}", "{{ 10001 * 'a' }}", "{{ ([0] * 10001)|length }}", "{{ s * n }}"):
        with pytest.raises(TemplateRenderError, match="sequence repetition"):
            render(template, s="x", n=20_000)


def test_sandbox_blocks_internals() -> None:
    with pytest.raises(TemplateRenderError, match="unsafe template"):
        render("{{ ''.__class__.__mro__ }}")
    with pytest.raises(TemplateRenderError, match="unsafe template"):
        render("{{ f.__globals__['json'] }}", f=render)


def test_syntax_errors_are_reported() -> None:
    with pytest.raises(TemplateRenderError, match="invalid template"):
        render("{% if %}")
    with pytest.raises(TemplateRenderError, match="invalid template"):
        render("{{ unclosed")


def test_runtime_errors_are_reported() -> None:
    with pytest.raises(TemplateRenderError, match=r"template error: .*division by zero"):
        render("{{ 1 / 0 }}")


def test_rendering_times_out_and_stops() -> None:
    formatter = TextFormatter(timeout=0.2)
    template = "{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match=r"took longer than 0\.2 s"):
        formatter.render(template, {})
    assert time.monotonic() - started < 2
    # The worker notices the deadline and ends instead of burning CPU in the background.
    for _ in range(50):
        if not any(t.name == "template-render" for t in threading.enumerate()):
            break
        time.sleep(0.05)
    assert not any(t.name == "template-render" for t in threading.enumerate())
