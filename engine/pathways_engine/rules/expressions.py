"""Guard conditions coordinators write, e.g. `vulnerability_level >= 3 and not consent_given`.

The text is parsed with `ast.parse` (parsing only) and every node is checked against a small
allow-list: and/or/not, comparisons, literals, lists after `in`, and names of the pathway's
declared fields or subject variables. Anything else (calls, attributes, subscripts, lambdas,
dunders) is refused when the definition loads. The checked tree is compiled into plain Python
closures; nothing from the definition is ever run through `eval` or `exec`.

A field that has no value yet is None: every comparison with it is false, except `== null`.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
import threading
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_LENGTH = 500
MAX_NODES = 100

# Variables every guard may use: the subject's age from its birth date, and when the event
# happens, in the pathway's zone and national calendar (rules/calendars.py `moment`).
SUBJECT_VARIABLES = {"age_years": "int", "age_months": "int", "event_hour": "int",
                     "event_weekday": "int", "event_is_holiday": "bool",
                     "event_is_working_day": "bool"}

Evaluator = Callable[[Mapping[str, Any]], Any]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_KEYWORDS = {"true": True, "false": False, "null": None}


class ExpressionError(ValueError):
    """The condition is not valid; the message says why."""


@dataclass(frozen=True)
class Condition:
    text: str
    names: frozenset[str]
    evaluate: Evaluator

    def __call__(self, values: Mapping[str, Any]) -> bool:
        return bool(self.evaluate(values))


# CPython 3.11 before 3.11.8 raises "SystemError: AST constructor recursion depth mismatch"
# when threads parse at the same time (gh-106905; seen as HTTP 500s under concurrent first
# requests): one parse at a time. Conditions are parsed when a definition loads, then cached.
_PARSING = threading.Lock()


def compile_condition(text: str, field_types: Mapping[str, str],
                      enum_values: Mapping[str, list[str]] | None = None) -> Condition:
    """Check `text` against the declared field types and compile it; raise ExpressionError."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the condition is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the condition is longer than {MAX_LENGTH} characters")
    try:
        with _PARSING:
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse condition {text!r}: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"the condition has more than {MAX_NODES} parts")
    types = {**SUBJECT_VARIABLES, **field_types}
    checker = _Compiler(types, enum_values or {})
    evaluate, kind = checker.compile(tree.body)
    if kind not in {"bool", "any"}:
        raise ExpressionError(f"the condition {text!r} is not true or false but a {kind} value")
    return Condition(text=text, names=frozenset(checker.used), evaluate=evaluate)


class _Compiler:
    def __init__(self, types: Mapping[str, str], enums: Mapping[str, list[str]]) -> None:
        self.types = types
        self.enums = enums
        self.used: set[str] = set()

    def compile(self, node: ast.expr) -> tuple[Evaluator, str]:
        if isinstance(node, ast.BoolOp):
            return self._boolop(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        raise ExpressionError(f"{_describe(node)} is not allowed in a condition; use fields, "
                              "literals, comparisons, and/or/not")

    def _boolop(self, node: ast.BoolOp) -> tuple[Evaluator, str]:
        parts = [self._truth(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return (lambda env: all(p(env) for p in parts)), "bool"
        return (lambda env: any(p(env) for p in parts)), "bool"

    def _truth(self, node: ast.expr) -> Evaluator:
        fn, kind = self.compile(node)
        if kind not in {"bool", "any"}:
            raise ExpressionError(f"{ast.unparse(node)!r} is a {kind} value, not true or false")
        return fn

    def _unary(self, node: ast.UnaryOp) -> tuple[Evaluator, str]:
        if isinstance(node.op, ast.Not):
            inner = self._truth(node.operand)
            return (lambda env: not inner(env)), "bool"
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = node.operand.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return self._constant(-value)
        raise ExpressionError(f"{ast.unparse(node)!r} is not allowed in a condition")

    def _name(self, name: str) -> tuple[Evaluator, str]:
        if name in _KEYWORDS or name in {"True", "False", "None"}:
            return self._constant(_KEYWORDS.get(name.lower(), None))
        if name.startswith("_"):
            raise ExpressionError(f"name {name!r} is not allowed in a condition")
        if name not in self.types:
            from pathways_engine.errors import did_you_mean

            raise ExpressionError(
                f"unknown field {name!r}{did_you_mean(name, self.types)} in condition; "
                f"declared fields: {', '.join(sorted(self.types))}"
            )
        self.used.add(name)
        return (lambda env: env.get(name)), self.types[name]

    def _constant(self, value: Any) -> tuple[Evaluator, str]:
        if value is None:
            return (lambda env: None), "null"
        if isinstance(value, bool):
            return (lambda env: value), "bool"
        if isinstance(value, int | float):
            number = Decimal(str(value))
            return (lambda env: number), "number"
        if isinstance(value, str):
            return (lambda env: value), "text"
        raise ExpressionError(f"literal {value!r} is not allowed in a condition")

    def _list(self, node: ast.expr) -> tuple[Evaluator, str, list[Any]]:
        if not isinstance(node, ast.List | ast.Tuple):
            raise ExpressionError("`in` needs a list of literals, e.g. level in [3, 4]")
        items: list[Any] = []
        kinds = set()
        for element in node.elts:
            fn, kind = self.compile(element)
            if not isinstance(element, ast.Constant | ast.UnaryOp):
                raise ExpressionError("`in` needs a list of literals, e.g. level in [3, 4]")
            items.append(fn({}))
            kinds.add(kind)
        frozen = frozenset(items)
        return (lambda env: frozen), (kinds.pop() if len(kinds) == 1 else "any"), items

    def _compare(self, node: ast.Compare) -> tuple[Evaluator, str]:
        left_fn, left_kind = self.compile(node.left)
        steps: list[tuple[Callable[[Any, Any], bool], Evaluator, bool]] = []
        previous_node, previous_kind = node.left, left_kind
        for op, right in zip(node.ops, node.comparators, strict=True):
            compare = _COMPARE.get(type(op))
            if compare is None:  # pragma: no cover - every cmpop is listed
                raise ExpressionError(f"operator {type(op).__name__} is not allowed")
            if isinstance(op, ast.In | ast.NotIn):
                right_fn, right_kind, items = self._list(right)
                for item in items:
                    self._check_types(previous_node, previous_kind, item, right_kind)
            else:
                right_fn, right_kind = self.compile(right)
                value = right_fn({}) if isinstance(right, ast.Constant) else None
                self._check_types(previous_node, previous_kind, value, right_kind)
                if isinstance(op, _ORDERING) and "null" in {previous_kind, right_kind}:
                    raise ExpressionError("null can only be compared with == or !=")
            steps.append((compare, right_fn, isinstance(op, ast.Eq | ast.NotEq)))
            previous_node, previous_kind = right, right_kind

        def evaluate(env: Mapping[str, Any]) -> bool:
            left = _normalise(left_fn(env))
            for compare, right_fn, null_ok in steps:
                right = _normalise(right_fn(env))
                if (left is None or right is None) and not null_ok:
                    return False
                try:
                    if not compare(left, right):
                        return False
                except TypeError:
                    return False
                left = right
            return True

        return evaluate, "bool"

    def _check_types(self, node: ast.expr, kind: str, literal: Any, literal_kind: str) -> None:
        if kind in {"any", "null"} or literal_kind in {"any", "null"}:
            return
        compatible = {
            "int": {"number"}, "decimal": {"number"}, "number": {"number", "int", "decimal"},
            "bool": {"bool"}, "text": {"text", "enum", "date"}, "enum": {"text"},
            "date": {"text"},
        }
        if literal_kind not in compatible.get(kind, {kind}) and kind != literal_kind:
            raise ExpressionError(
                f"{ast.unparse(node)!r} is a {kind} value and cannot be compared with "
                f"{literal!r}" if literal is not None else
                f"{ast.unparse(node)!r} is a {kind} value and cannot be compared with a "
                f"{literal_kind} value"
            )
        if kind == "enum" and isinstance(node, ast.Name) and isinstance(literal, str):
            allowed = self.enums.get(node.id, [])
            if allowed and literal not in allowed:
                raise ExpressionError(
                    f"{literal!r} is not a value of {node.id!r}; its values: {', '.join(allowed)}"
                )
        if kind == "date" and isinstance(literal, str):
            try:
                dt.date.fromisoformat(literal)
            except ValueError:
                raise ExpressionError(f"{literal!r} is not a date (YYYY-MM-DD)") from None


def _normalise(value: Any) -> Any:
    """Numbers compare as Decimal, dates as ISO text, so stored JSON and literals agree."""
    if isinstance(value, bool) or value is None or isinstance(value, frozenset):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Call: "a function call",
        ast.Attribute: "attribute access",
        ast.Subscript: "indexing",
        ast.Lambda: "a lambda",
        ast.BinOp: "arithmetic",
    }
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    return type(node).__name__
