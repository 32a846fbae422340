"""Formula syntax: tokenizer, AST and a recursive-descent parser.

Grammar (lowest precedence first; every binary level is left-associative)::

    formula        := comparison EOF
    comparison     := additive (("=" | "!=" | "<" | ">" | "<=" | ">=") additive)*
    additive       := multiplicative (("+" | "-") multiplicative)*
    multiplicative := unary (("*" | "/") unary)*
    unary          := "-"* primary
    primary        := NUMBER | STRING | FIELD | TRUE | FALSE
                    | NAME "(" [comparison ("," comparison)*] ")"
                    | "(" comparison ")"

    NUMBER := digits ["." digits] | "." digits
    STRING := '"' chars '"'          escapes: \\" \\\\ \\n \\t
    FIELD  := "{" any characters except "}" "}"   (exact, case-sensitive name)
    NAME   := letter (letter | digit | "_")*      (function names, case-insensitive)

Every syntax problem raises ``FormulaSyntaxError(message, position)`` with the 0-based character
offset of the offending token. Unknown functions, wrong argument counts and unknown literal date
units are syntax errors too, reported at the function name (or the unit literal).

The binary levels are parsed by precedence climbing (one function for all of them). Runs of
one level are kept flat (``BinaryChain``) so that a long ``1+1+...+1`` does not become a deep
tree; nesting (parentheses and calls) is capped at ``MAX_NESTING``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Union

__all__ = [
    "FormulaSyntaxError",
    "Literal",
    "FieldRef",
    "Negate",
    "BinaryChain",
    "Call",
    "Node",
    "FUNCTIONS",
    "ADD_UNITS",
    "DIFF_UNITS",
    "MAX_LENGTH",
    "MAX_NESTING",
    "parse_expression",
]

MAX_LENGTH = 10_000
MAX_NESTING = 100


class FormulaSyntaxError(Exception):
    """A formula that cannot be parsed; ``position`` is a 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = position
        super().__init__(f"{message} (at position {position})")


# Function name -> (minimum, maximum) argument count; None means unbounded.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "IF": (2, 3),
    "SWITCH": (3, None),
    "AND": (1, None),
    "OR": (1, None),
    "NOT": (1, 1),
    "EMPTY": (1, 1),
    "ISERROR": (1, 1),
    "ERROR": (0, 1),
    "BLANK": (0, 0),
    "TRUE": (0, 0),
    "FALSE": (0, 0),
    "CONCAT": (2, None),
    "LEN": (1, 1),
    "LOWER": (1, 1),
    "UPPER": (1, 1),
    "TRIM": (1, 1),
    "ROUND": (1, 2),
    "TODAY": (0, 0),
    "NOW": (0, 0),
    "YEAR": (1, 1),
    "MONTH": (1, 1),
    "DATE": (1, 1),
    "DAY": (1, 1),
    "HOUR": (1, 1),
    "MINUTE": (1, 1),
    "DATEADD": (3, 3),
    "DATESUBTRACT": (3, 3),
    "DATEDIFF": (3, 3),
}

# Unit spelling (lower-cased, singular or plural) -> canonical unit.
ADD_UNITS: dict[str, str] = {
    f"{unit}{suffix}": f"{unit}s"
    for unit in ("year", "month", "week", "day", "hour", "minute")
    for suffix in ("", "s")
}
DIFF_UNITS: dict[str, str] = {**ADD_UNITS, "second": "seconds", "seconds": "seconds"}

# Function -> (index of its unit argument, accepted units), checked at parse time for literals.
_UNIT_ARGS: dict[str, tuple[int, dict[str, str]]] = {
    "DATEADD": (2, ADD_UNITS),
    "DATESUBTRACT": (2, ADD_UNITS),
    "DATEDIFF": (2, DIFF_UNITS),
}

# ------------------------------------------------------------------------------------ AST


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | Decimal | bool
    pos: int


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node
    count: int  # how many "-" signs were written
    pos: int


@dataclass(frozen=True, slots=True)
class BinaryChain:
    """``first op1 x1 op2 x2 ...`` at one precedence level, folded left to right."""

    first: Node
    rest: tuple[tuple[str, int, Node], ...]  # (operator, position, operand)


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # upper-cased
    args: tuple[Node, ...]
    pos: int


Node = Union[Literal, FieldRef, Negate, BinaryChain, Call]

# ------------------------------------------------------------------------------ tokenizer


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # NUMBER STRING FIELD NAME OP ( ) , EOF
    text: str  # operator text, name, field name, or decoded string value
    pos: int


_OPERATORS = ("!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/")
_PUNCTUATION = "(),"
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit() or (ch == "." and i + 1 < n and source[i + 1].isdigit()):
            i = _read_number(source, i, tokens)
        elif ch == '"':
            i = _read_string(source, i, tokens)
        elif ch == "{":
            i = _read_field(source, i, tokens)
        elif ch.isalpha() or ch == "_":
            start = i
            while i < n and (source[i].isalnum() or source[i] == "_"):
                i += 1
            tokens.append(Token("NAME", source[start:i], start))
        elif ch in _PUNCTUATION:
            tokens.append(Token(ch, ch, i))
            i += 1
        else:
            op = next((op for op in _OPERATORS if source.startswith(op, i)), None)
            if op is None:
                raise FormulaSyntaxError(f"unexpected character {ch!r}", i)
            tokens.append(Token("OP", op, i))
            i += len(op)
    tokens.append(Token("EOF", "", n))
    return tokens


def _read_number(source: str, start: int, tokens: list[Token]) -> int:
    i = start
    while i < len(source) and source[i].isdigit():
        i += 1
    if i + 1 < len(source) and source[i] == "." and source[i + 1].isdigit():
        i += 1
        while i < len(source) and source[i].isdigit():
            i += 1
    if source[i : i + 1].isalpha() or source[i : i + 1] in ("_", "."):
        raise FormulaSyntaxError("malformed number", start)
    tokens.append(Token("NUMBER", source[start:i], start))
    return i


def _read_string(source: str, start: int, tokens: list[Token]) -> int:
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == '"':
            tokens.append(Token("STRING", "".join(chars), start))
            return i + 1
        if ch == "\\":
            escaped = source[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise FormulaSyntaxError(
                    "invalid escape in string (use \\\", \\\\, \\n or \\t)", i
                )
            chars.append(_ESCAPES[escaped])
            i += 2
        else:
            chars.append(ch)
            i += 1
    raise FormulaSyntaxError("unterminated string", start)


def _read_field(source: str, start: int, tokens: list[Token]) -> int:
    end = source.find("}", start + 1)
    if end == -1:
        raise FormulaSyntaxError("unterminated field reference (missing '}')", start)
    name = source[start + 1 : end]
    if not name.strip():
        raise FormulaSyntaxError("empty field reference", start)
    tokens.append(Token("FIELD", name, start))
    return end + 1


# --------------------------------------------------------------------------------- parser

_PRECEDENCE: dict[str, int] = {
    **dict.fromkeys(("=", "!=", "<", ">", "<=", ">="), 1),
    **dict.fromkeys(("+", "-"), 2),
    **dict.fromkeys(("*", "/"), 3),
}


def parse_expression(source: str) -> Node:
    """Parse ``source`` into an AST or raise FormulaSyntaxError."""
    if not isinstance(source, str):
        raise FormulaSyntaxError("formula must be a string", 0)
    if len(source) > MAX_LENGTH:
        raise FormulaSyntaxError(f"formula is longer than {MAX_LENGTH:,} characters", MAX_LENGTH)
    if not source.strip():
        raise FormulaSyntaxError("empty formula", 0)
    try:
        return _Parser(tokenize(source)).parse()
    except RecursionError:  # only reachable when the caller's own stack is already deep
        raise FormulaSyntaxError("formula is nested too deeply", 0) from None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> Node:
        node = self.binary()
        if self.current.kind != "EOF":
            raise self.unexpected()
        return node

    def unexpected(self) -> FormulaSyntaxError:
        token = self.current
        if token.kind == "EOF":
            return FormulaSyntaxError("unexpected end of formula", token.pos)
        shown = {"STRING": "string", "NUMBER": "number", "FIELD": "field reference"}.get(
            token.kind, repr(token.text)
        )
        return FormulaSyntaxError(f"unexpected {shown}", token.pos)

    def binary(self, min_precedence: int = 1) -> Node:
        """Precedence climbing; runs of one level become one flat, left-folded BinaryChain."""
        left = self.unary()
        rest: list[tuple[str, int, Node]] = []
        level = 0
        while self.current.kind == "OP" and _PRECEDENCE[self.current.text] >= min_precedence:
            op = self.advance()
            precedence = _PRECEDENCE[op.text]
            right = self.binary(precedence + 1)
            if rest and precedence != level:  # a looser operator: close the tighter run
                left, rest = BinaryChain(left, tuple(rest)), []
            rest.append((op.text, op.pos, right))
            level = precedence
        return BinaryChain(left, tuple(rest)) if rest else left

    def unary(self) -> Node:
        start, count = self.current.pos, 0
        while self.current.kind == "OP" and self.current.text == "-":
            self.advance()
            count += 1
        operand = self.primary()
        return Negate(operand, count, start) if count else operand

    def primary(self) -> Node:
        token = self.current
        if token.kind == "NUMBER":
            self.advance()
            return Literal(Decimal(token.text), token.pos)
        if token.kind == "STRING":
            self.advance()
            return Literal(token.text, token.pos)
        if token.kind == "FIELD":
            self.advance()
            return FieldRef(token.text, token.pos)
        if token.kind == "NAME":
            return self.name()
        if token.kind == "(":
            self.enter(token)
            self.advance()
            node = self.binary()
            self.close(token)
            return node
        raise self.unexpected()

    def name(self) -> Node:
        token = self.advance()
        upper = token.text.upper()
        if self.current.kind != "(":
            if upper in ("TRUE", "FALSE"):
                return Literal(upper == "TRUE", token.pos)
            raise FormulaSyntaxError(
                f"unknown name {token.text!r} (field references need braces: {{{token.text}}})",
                token.pos,
            )
        if upper not in FUNCTIONS:
            raise FormulaSyntaxError(f"unknown function {token.text!r}", token.pos)
        self.enter(token)
        opening = self.advance()
        args: list[Node] = []
        if self.current.kind != ")":
            args.append(self.binary())
            while self.current.kind == ",":
                self.advance()
                args.append(self.binary())
        self.close(opening)
        self.check_call(upper, token, args)
        return Call(upper, tuple(args), token.pos)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FormulaSyntaxError(
                f"formula is nested more than {MAX_NESTING} levels deep", token.pos
            )

    def close(self, opening: Token) -> None:
        if self.current.kind == ")":
            self.advance()
            self.depth -= 1
            return
        if self.current.kind == "EOF":
            raise FormulaSyntaxError("unbalanced parentheses: '(' is never closed", opening.pos)
        raise self.unexpected()

    def check_call(self, name: str, token: Token, args: list[Node]) -> None:
        low, high = FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            if high is None:
                wanted = f"at least {low}"
            elif low == high:
                wanted = str(low)
            else:
                wanted = f"{low} to {high}"
            noun = "argument" if wanted == "1" else "arguments"
            raise FormulaSyntaxError(f"{name} expects {wanted} {noun}, got {len(args)}", token.pos)
        if name in _UNIT_ARGS:
            index, units = _UNIT_ARGS[name]
            unit = args[index]
            if isinstance(unit, Literal) and (
                not isinstance(unit.value, str) or unit.value.lower() not in units
            ):
                accepted = ", ".join(sorted(set(units.values())))
                raise FormulaSyntaxError(
                    f"unknown unit for {name} (use one of: {accepted})", unit.pos
                )
