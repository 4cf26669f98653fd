"""The slice of OData that Graph clients send: ``$filter``, ``$select``, ``$expand``.

A filter compiles to a predicate over a JSON document. Comparison of strings ignores case,
as Exchange and Entra ID do. Supported: ``eq ne gt ge lt le``, ``and or not``, parentheses,
``startswith/endswith/contains``, and ``path/any(v: ...)`` lambdas (``Any`` too).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Env = Mapping[str, Any]
Expr = Callable[[Env], Any]
ROOT = "$it"

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),:/])"
    r"|(?P<num>-?\d[\w:.+-]*)|(?P<name>[A-Za-z_@$][\w.@$#]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_FUNCS: dict[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": operator.contains,
}


class ODataError(ValueError):
    """A query option the emulator cannot parse (answered as a Graph 400)."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


@dataclass(frozen=True)
class Filter:
    """A compiled ``$filter``.

    ``equals`` lists the ``(path, literal)`` pairs of its top ``and``; ``or_clauses`` counts
    the clauses joined by ``or`` (anywhere in it), which Entra ID caps.
    """

    predicate: Expr
    equals: tuple[tuple[str, Any], ...]
    or_clauses: int = 1

    def __call__(self, doc: Mapping[str, Any]) -> bool:
        return bool(self.predicate({ROOT: doc}))


def _tokenize(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ODataError(f"cannot parse near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return tokens


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _lookup(value: Any, name: str) -> Any:
    if not isinstance(value, Mapping):
        return None
    if name in value:
        return value[name]
    lowered = name.lower()
    return next((v for k, v in value.items() if k.lower() == lowered), None)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.scope: list[str] = []
        self.equals: list[tuple[str, Any]] = []

    def peek(self, offset: int = 0) -> _Tok | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None or (text is not None and tok.text.lower() != text):
            raise ODataError(f"expected {text or 'more input'}, got {tok.text if tok else 'end'}")
        self.pos += 1
        return tok

    def at_punct(self, char: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.text == char

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "name" and tok.text.lower() in words

    def parse(self) -> Filter:
        expr = self.or_expr(top=True)
        if self.peek() is not None:
            raise ODataError(f"unexpected {self.take().text!r}")
        ors = sum(1 for t in self.tokens if t.kind == "name" and t.text.lower() == "or")
        return Filter(expr, tuple(self.equals), ors + 1)

    def or_expr(self, top: bool = False) -> Expr:
        parts = [self.and_expr(top)]
        while self.at_word("or"):
            self.take()
            parts.append(self.and_expr(False))
        if len(parts) == 1:
            return parts[0]
        if top:
            self.equals.clear()  # an "or" at the top: no single equality narrows the search
        return lambda env: any(p(env) for p in parts)

    def and_expr(self, top: bool) -> Expr:
        parts = [self.unary(top)]
        while self.at_word("and"):
            self.take()
            parts.append(self.unary(top))
        if len(parts) == 1:
            return parts[0]
        return lambda env: all(p(env) for p in parts)

    def unary(self, top: bool) -> Expr:
        if self.at_word("not"):
            self.take()
            inner = self.unary(False)
            return lambda env: not inner(env)
        if self.at_punct("("):
            self.take("(")
            inner = self.or_expr(False)
            self.take(")")
            return inner
        left, path = self.operand()
        if self.at_word(*_COMPARE):
            op_name = self.take().text.lower()
            right, right_path = self.operand()
            compare = _COMPARE[op_name]
            if top and op_name == "eq" and path and right_path is None and not self.scope:
                self.equals.append((path, right({})))

            def comparison(env: Env) -> bool:
                a, b = _fold(left(env)), _fold(right(env))
                if op_name not in ("eq", "ne") and (a is None or b is None):
                    return False
                try:
                    return compare(a, b)
                except TypeError:
                    return False

            return comparison
        return left

    def operand(self) -> tuple[Expr, str | None]:
        tok = self.take()
        if tok.kind == "str":
            value = tok.text[1:-1].replace("''", "'")
            return (lambda env: value), None
        if tok.kind == "num":
            number: Any = _number(tok.text)
            return (lambda env: number), None
        if tok.kind != "name":
            raise ODataError(f"unexpected {tok.text!r}")
        word = tok.text.lower()
        if word in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[word]
            return (lambda env: constant), None
        if word in _FUNCS and self.at_punct("("):
            return self.function(word), None
        return self.path(tok.text)

    def function(self, name: str) -> Expr:
        self.take("(")
        first, _ = self.operand()
        self.take(",")
        second, _ = self.operand()
        self.take(")")
        func = _FUNCS[name]

        def call(env: Env) -> bool:
            a, b = _fold(first(env)), _fold(second(env))
            return isinstance(a, str) and isinstance(b, str) and func(a, b)

        return call

    def path(self, first: str) -> tuple[Expr, str | None]:
        segments = [first]
        while self.at_punct("/"):
            self.take("/")
            name = self.take().text
            if name.lower() in ("any", "all") and self.at_punct("("):
                return self.lambda_(segments, name.lower()), None
            segments.append(name)
        base, rest = (segments[0], segments[1:]) if segments[0] in self.scope else (ROOT, segments)
        getter = _getter(base, rest)
        return getter, "/".join(segments) if base == ROOT else None

    def lambda_(self, segments: Sequence[str], kind: str) -> Expr:
        base, rest = (segments[0], segments[1:]) if segments[0] in self.scope else (ROOT, segments)
        collection = _getter(base, list(rest))
        self.take("(")
        if self.at_punct(")"):
            self.take(")")
            return lambda env: bool(collection(env))
        var = self.take().text
        self.take(":")
        self.scope.append(var)
        body = self.or_expr(False)
        self.scope.pop()
        self.take(")")
        quantifier = any if kind == "any" else all

        def evaluate(env: Env) -> bool:
            items = collection(env)
            if not isinstance(items, list):
                return False
            return quantifier(body({**env, var: item}) for item in items)

        return evaluate


def _getter(base: str, rest: Sequence[str]) -> Expr:
    def get(env: Env) -> Any:
        value = env.get(base)
        for name in rest:
            value = _lookup(value, name)
        return value

    return get


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text  # a date-time literal, compared as text (ISO 8601 sorts)


def parse_filter(text: str) -> Filter:
    """Compile a ``$filter`` expression; raises ODataError when it is not understood."""
    return _Parser(text).parse()


@dataclass(frozen=True)
class Expand:
    """One ``$expand`` item: the navigation property and its optional nested ``$filter``."""

    name: str
    filter: Filter | None


def parse_expand(text: str) -> list[Expand]:
    """Split ``$expand`` into items, e.g. ``singleValueExtendedProperties($filter=id eq '...')``."""
    items: list[Expand] = []
    depth, start = 0, 0
    for index, char in enumerate(text + ","):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(_expand_item(text[start:index].strip()))
            start = index + 1
    return [item for item in items if item.name]


def _expand_item(text: str) -> Expand:
    name, _, options = text.partition("(")
    nested: Filter | None = None
    if options:
        options = options.rstrip()
        if not options.endswith(")"):
            raise ODataError(f"unbalanced parentheses in $expand {text!r}")
        for option in options[:-1].split(";"):
            key, _, value = option.partition("=")
            if key.strip().lower() == "$filter":
                nested = parse_filter(value)
            elif key.strip():
                raise ODataError(f"unsupported $expand option {key.strip()!r}")
    return Expand(name.strip(), nested)


def parse_select(text: str | None) -> list[str] | None:
    """The ``$select`` property names, or None when every default property is wanted."""
    if not text:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]
