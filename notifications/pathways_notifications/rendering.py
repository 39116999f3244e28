"""Rendering a pathway's templates: sandboxed Jinja2 with budgets, StrictUndefined, HTML escaped.

Templates live beside the definition as `templates/<name>/<lang>.subject.j2`, `<lang>.txt.j2`
and optionally `<lang>.html.j2`; they come from the instance's definition snapshot, so a
running instance keeps the wording it started with. The sandbox refuses access to internals
(`{{ ''.__class__.__mro__ }}`), and StrictUndefined turns a missing variable into an error.

A message is rendered inside the step that queues it (so it sees the consents and the
recipient under the instance's lock), so rendering must be cheap whatever a template or a
caseworker's value says. Every render has a budget: at most `MAX_STEPS` template lines run
and `MAX_SECONDS` of time, no value or output longer than `MAX_SIZE` characters and no more
than `MAX_MADE` characters made by filters and calls in all (a `map` makes many values that
are each small enough), powers and
repetitions checked before they are computed, no string method or filter that can allocate a
huge string, no recursion beyond Python's limit. Past the budget the render fails with a
NotificationError naming the template and line, and the step is refused - never a hang, a
gigabyte, or a lock held for a minute.

The line and time budget is kept by a trace function, which Python calls on every function
call while it is set (about a tenth of a SQLite step's CPU for two messages). A template
without loops, macros, calls, blocks or other templates runs each line of its code at most
once, so it cannot exceed either; it is rendered without the trace (`BoundedSandbox.runs_straight`,
learnt while the template compiles).
"""

from __future__ import annotations

import math
import sys
import time
import types
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import DictLoader
from jinja2 import StrictUndefined
from jinja2 import TemplateError
from jinja2 import TemplateSyntaxError
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.compiler import Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from markupsafe import escape
from pathways_engine.definition.loader import Definition
from pathways_engine.errors import NotificationError

PARTS = ("subject", "txt", "html")
MAX_SIZE = 100_000  # characters in any value a template makes, and in each rendered part
MAX_MADE = 10 * MAX_SIZE  # characters all the values of one render's filters and calls make
MAX_STEPS = 200_000  # template lines executed per render
MAX_SECONDS = 2.0
MAX_POWER_BITS = 4_096
TEMPLATE_FILE = "<template>"  # what Jinja names the code of templates from a DictLoader
SAFE_STR_METHODS = frozenset({
    "upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith",
    "endswith", "split", "splitlines", "isdigit", "isalpha", "isalnum", "isspace", "count",
    "find", "casefold",
})
UNSAFE_FILTERS = ("format", "xmlattr", "pprint", "urlize")
# what can make a template run a line of its code more than once (a block can call itself
# through `self`)
REPEATING = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.Include, nodes.Import,
             nodes.FromImport, nodes.Extends, nodes.Block)


class BudgetExceeded(SecurityError):
    """A render went past its budget (module docstring)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    language: str


def _size(value: Any) -> int:
    try:
        return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0
    except TypeError:  # pragma: no cover - sized types above
        return 0


# characters made so far by the render running in this context (None: not rendering)
_MADE: ContextVar[list[int] | None] = ContextVar("pathways_template_made", default=None)


def _check_size(value: Any) -> Any:
    size = _size(value)
    if size > MAX_SIZE:
        raise BudgetExceeded(f"a value of more than {MAX_SIZE} characters")
    made = _MADE.get()
    if made is not None:
        made[0] += size
        if made[0] > MAX_MADE:
            raise BudgetExceeded(f"values of more than {MAX_MADE} characters in all")
    return value


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 - Jinja's names
    """Jinja's placeholder text, refused before it is made if it could pass the budget:
    `lipsum(99999, false, 99, 100)` took six seconds in one template line."""
    from jinja2.utils import generate_lorem_ipsum

    if isinstance(n, int) and isinstance(max, int) and n * max > MAX_SIZE:
        raise BudgetExceeded(f"lipsum of up to {n * max} words")
    return str(generate_lorem_ipsum(n, html, min, max))


def _check_args(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_SIZE:
            raise BudgetExceeded(f"a number larger than {MAX_SIZE} given to a filter or method")


def _bounded(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose parameters (not the value it filters) and result are sized."""
    passed = 1 if hasattr(function, "jinja_pass_arg") else 0  # context/environment first

    def filtered(*args: Any, **kwargs: Any) -> Any:
        _check_args((*args[passed + 1:], *kwargs.values()))
        return _check_size(function(*args, **kwargs))

    for attribute in ("jinja_pass_arg",):  # keep what tells Jinja to pass the context
        if hasattr(function, attribute):
            setattr(filtered, attribute, getattr(function, attribute))
    return filtered


def _replace(value: str, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None:
        hits = min(hits, count)
    if len(text) + hits * (len(new) - len(old)) > MAX_SIZE:
        raise BudgetExceeded(f"replace would make more than {MAX_SIZE} characters")
    return text.replace(old, new, -1 if count is None else count)


def _join(value: Iterable[Any], separator: str = "", attribute: Any = None) -> str:
    items = [str(item) for item in value]
    if sum(map(len, items)) + len(separator) * max(len(items) - 1, 0) > MAX_SIZE:
        raise BudgetExceeded(f"join would make more than {MAX_SIZE} characters")
    return str(separator).join(items)


class _Generator(CodeGenerator):
    """Routes `a ~ b` through the environment, so a concatenation is sized before it is made,
    and tells it which templates can repeat a line and how long each one's code is
    (`BoundedSandbox.runs_straight`), learnt while compiling, which happens anyway."""

    environment: BoundedSandbox

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if isinstance(node, REPEATING):
            self.environment.repeating.add(self.name)
        return super().visit(node, *args, **kwargs)

    def visit_Template(self, node: nodes.Template,  # noqa: N802 - Jinja's name
                       frame: Frame | None = None) -> None:
        # never unmarked: a name's source is fixed for an environment (one per definition
        # content), and two threads may compile the same template at once
        super().visit_Template(node, frame)
        self.environment.code_lines[self.name] = self.code_lineno

    def visit_Concat(self, node: Concat, frame: Frame) -> None:  # noqa: N802 - Jinja's name
        markup = "context.eval_ctx.autoescape" if frame.eval_ctx.volatile else \
            repr(bool(frame.eval_ctx.autoescape))
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {markup})")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with the budgets of the module docstring."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"**", "*", "+"})

    def __init__(self, templates: Mapping[str, str]) -> None:
        super().__init__(loader=DictLoader(dict(templates)), undefined=StrictUndefined,
                         autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                         keep_trailing_newline=False)
        for name in UNSAFE_FILTERS:
            self.filters.pop(name, None)
        self.filters = {name: _bounded(f) for name, f in self.filters.items()}
        self.filters["replace"] = _bounded(_replace)
        self.filters["join"] = _bounded(_join)
        self.globals.pop("namespace", None)  # mutable accumulators across loop iterations
        self.globals["lipsum"] = _lipsum
        # filled by _Generator as it compiles; a template not compiled yet counts as repeating
        self.repeating: set[str | None] = set()
        self.code_lines: dict[str | None, int] = {}

    def runs_straight(self, path: str) -> bool:
        """Whether the template runs each line of its code at most once (nothing in it
        repeats) and has fewer lines than half the budget (a generator's resumed line counts
        again). False for one that does not compile, so its render reports the error as
        every other does."""
        try:
            self.get_template(path)  # compiled once, as rendering needs it anyway
        except TemplateError:
            return False
        return path not in self.repeating and self.code_lines.get(path, MAX_STEPS) < MAX_STEPS // 2

    def bounded_join(self, parts: tuple[Any, ...], markup: bool) -> str:
        texts = [escape(p) if markup else str(p) for p in parts]
        if sum(map(len, texts)) > MAX_SIZE:
            raise BudgetExceeded(f"a value of more than {MAX_SIZE} characters")
        return Markup("").join(texts) if markup else "".join(texts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int | float) and isinstance(right, int | float):
                bits = abs(right) * math.log2(abs(left)) if abs(left) > 1 else 0
                if bits > MAX_POWER_BITS:
                    raise BudgetExceeded(f"a power larger than 2**{MAX_POWER_BITS}")
        elif operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if _size(sequence) and isinstance(times, int) and \
                        _size(sequence) * times > MAX_SIZE:
                    raise BudgetExceeded(f"a repetition of more than {MAX_SIZE} characters")
        elif operator == "+" and _size(left) + _size(right) > MAX_SIZE:
            raise BudgetExceeded(f"a value of more than {MAX_SIZE} characters")
        return super().call_binop(context, operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value):
            return attr in SAFE_STR_METHODS
        return bool(super().is_safe_attribute(obj, attr, value))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_args((*args, *kwargs.values()))
        return _check_size(super().call(__context, __obj, *args, **kwargs))


class _Meter:
    """Counts the lines templates execute (a trace function), and the time they take."""

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def __call__(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != TEMPLATE_FILE:
            return None
        if event == "line":
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise BudgetExceeded(f"more than {MAX_STEPS} template steps")
            if self.steps % 1024 == 0 and time.monotonic() > self.deadline:
                raise BudgetExceeded(f"more than {MAX_SECONDS:g} s")
        return self


def _metered(render: Callable[[], Rendered]) -> Rendered:
    meter, previous = _Meter(), sys.gettrace()
    sys.settrace(meter)
    try:
        return render()
    finally:
        sys.settrace(previous)


_environments: OrderedDict[str, BoundedSandbox] = OrderedDict()
_CACHED_DEFINITIONS = 64


def environment(templates: Mapping[str, str]) -> BoundedSandbox:
    return BoundedSandbox(templates)


def environment_for(definition: Definition) -> BoundedSandbox:
    """One environment per definition content, so each template compiles once (not per message)."""
    env = _environments.get(definition.content_hash)
    if env is None:
        env = environment(definition.templates)
        _environments[definition.content_hash] = env
        while len(_environments) > _CACHED_DEFINITIONS:
            _environments.popitem(last=False)
    return env


def template_path(name: str, language: str, part: str) -> str:
    return f"{name}/{language}.{part}.j2"


def choose_language(definition: Definition, name: str, wanted: str | None) -> str:
    """The recipient's language if the template has it, else the declared fallback."""
    for language in (wanted, definition.spec.fallback_language):
        if language and template_path(name, language, "subject") in definition.templates:
            return language
    raise NotificationError(
        f"{definition.path}: template {name!r} has no {definition.spec.fallback_language!r} "
        f"version (templates/{template_path(name, definition.spec.fallback_language, 'subject')})")


def _render_part(env: BoundedSandbox, path: str, context: Mapping[str, Any]) -> str:
    out: list[str] = []
    size = 0
    for chunk in env.get_template(path).generate(**context):
        size += len(chunk)
        if size > MAX_SIZE:
            raise BudgetExceeded(f"output longer than {MAX_SIZE} characters")
        out.append(chunk)
    return "".join(out)


def render(definition: Definition, name: str, language: str | None,
           context: Mapping[str, Any]) -> Rendered:
    language = choose_language(definition, name, language)
    env = environment_for(definition)
    paths = [template_path(name, language, part) for part in PARTS]
    made = _MADE.set([0])
    try:
        if all(env.runs_straight(path) for path in paths if path in definition.templates):
            return _render(definition, name, language, context)
        return _metered(lambda: _render(definition, name, language, context))
    finally:
        _MADE.reset(made)


def _render(definition: Definition, name: str, language: str,
            context: Mapping[str, Any]) -> Rendered:
    env = environment_for(definition)
    parts: dict[str, str | None] = {}
    for part in PARTS:
        path = template_path(name, language, part)
        if path not in definition.templates:
            parts[part] = None
            continue
        try:
            parts[part] = _render_part(env, path, context)
        except BudgetExceeded as exc:
            raise NotificationError(
                f"{definition.path}: templates/{path}:{error_line(exc, path)}: template {name} "
                f"went past its budget ({exc.message or exc}) and was stopped") from None
        except TemplateError as exc:
            raise NotificationError(
                f"{definition.path}: templates/{path}:{error_line(exc, path)}: "
                f"{exc.message or exc}") from None
        except RecursionError:
            raise NotificationError(
                f"{definition.path}: templates/{path}:1: template {name} went past its budget "
                "(it calls or includes itself without end) and was stopped") from None
        except (ArithmeticError, ValueError, TypeError, MemoryError) as exc:
            raise NotificationError(
                f"{definition.path}: templates/{path}:{error_line(exc, path)}: "
                f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if parts["txt"] is None:
        raise NotificationError(f"{definition.path}: templates/{template_path(name, language, 'txt')}"
                                " is missing")
    subject = " ".join((parts["subject"] or "").split())
    return Rendered(subject, str(parts["txt"]).strip() + "\n", parts["html"], language)


def error_line(exc: BaseException, path: str) -> int:
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        return exc.lineno
    tb: types.TracebackType | None = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in {path, TEMPLATE_FILE}:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
