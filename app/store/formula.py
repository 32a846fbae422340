"""Formula fields: parse once, evaluate per entry.

    from .formula import parse, evaluate, FormulaSyntaxError, FormulaValueError
    f = parse('IF({Score} >= 90, "A", "B")')      # FormulaSyntaxError(message, position)
    f.references   -> frozenset({"Score"});  f.uses_now -> False
    evaluate(f, {"Score": 93}, now=now_utc, tz=ZoneInfo("Europe/Paris"))  -> "A"

The grammar lives in app.store.formula_syntax, calendar rules in app.store.formula_dates.
Limits: 10,000 characters and 100 levels of parentheses/calls (FormulaSyntaxError). Beyond the
contract: TRUE / FALSE (bare or as TRUE()), IF with two arguments (else -> null), and literal
units checked at parse time (DATEADD(x, 1, "fortnight") is a syntax error at the unit).

Values
    Field values arrive already resolved per the contract's type table (text -> str, number ->
    int/float/Decimal, date -> date or aware datetime, checkbox -> bool, select -> label, ...).
    A name missing from ``values`` is null. Lists become ", "-joined text. Naive datetimes are
    taken as UTC. ``evaluate`` returns str | int | float | bool | date | datetime (aware UTC) |
    None, or a FormulaValueError *instance* (never raised) for ERROR() and invalid operations.

Numbers
    Computed as Decimal (28 significant digits; float inputs enter via their shortest repr, so
    0.1 + 0.2 = 0.3). Results are int when integral (|n| < 1e21), otherwise the nearest float.
    Booleans count as 1/0 in arithmetic. Division by zero is null. ROUND rounds half away from
    zero; negative digits round to tens, hundreds, ...

Null rules
    Arithmetic with a null operand is null; unary minus of null is null.
    ``+`` with a text operand concatenates (null -> "", numbers/booleans/dates as CONCAT shows
    them), so {First} + " " + {Last} works; other arithmetic on text is an error.
    ``=`` / ``!=``: null equals only null (BLANK() = "" is false; use EMPTY). Values of different
    types are never equal (1 = "1" is false, TRUE = 1 is false).
    ``<`` ``>`` ``<=`` ``>=`` with a null operand give null (falsy in IF/AND/OR/NOT); ordering
    values of different types (text vs number) is an error.
    Truthiness (IF, AND, OR, NOT): null, false, 0 and "" are false; everything else is true.
    AND/OR/NOT always return true/false. IF and SWITCH evaluate only the branch they pick.
    CONCAT: null -> "", true/false -> "true"/"false", dates -> YYYY-MM-DD, datetimes -> UTC ISO
    with Z. LEN(null) = 0; LOWER/UPPER/TRIM(null) = null; date functions of null give null.
    EMPTY is true for null, "", an empty list, 0 and false.

Errors
    ERROR([message]) and invalid operations (YEAR("abc"), "a" * 2, text < number, a date in
    arithmetic: use DATEADD/DATEDIFF) produce a FormulaValueError that propagates through every
    operator and function except ISERROR, and IF/SWITCH branches not taken.

Dates
    TODAY() is the date in ``tz``; NOW() the aware UTC instant. Date functions also accept ISO
    8601 text ("2024-02-29", "2024-02-29T10:00:00Z"). YEAR/MONTH/DATE/DAY/HOUR/MINUTE read a
    datetime's wall clock in ``tz``; DAY is the weekday, 0 = Sunday. A date compared with a
    datetime is local midnight in ``tz``. DATEDIFF mixing a date and a datetime compares local
    dates for years/months/weeks/days. Date minus date is an error: use DATEDIFF.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Union
from zoneinfo import ZoneInfo

from . import formula_dates as dates
from .formula_syntax import (
    ADD_UNITS,
    DIFF_UNITS,
    FUNCTIONS,
    BinaryChain,
    Call,
    FieldRef,
    FormulaSyntaxError,
    Literal,
    Negate,
    Node,
    parse_expression,
)

__all__ = ["Formula", "FormulaSyntaxError", "FormulaValueError", "evaluate", "parse"]


class FormulaValueError(Exception):
    """An error *value*: returned by evaluate (never raised to callers), detected by ISERROR."""

    def __init__(self, message: str = "ERROR()") -> None:
        self.message = message
        super().__init__(message)


# Internal value domain: numbers are always Decimal.
Value = Union[None, bool, Decimal, str, date, datetime, FormulaValueError]

_CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=999,
    Emin=-999,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)
_MAX_EXACT_INT = Decimal(10) ** 21


@dataclass(frozen=True)
class Formula:
    expression: str
    references: frozenset[str]
    uses_now: bool
    root: Node


def parse(expression: str) -> Formula:
    """Parse a formula; raises FormulaSyntaxError(message, position). Results are cached."""
    if not isinstance(expression, str):
        raise FormulaSyntaxError("formula must be a string", 0)
    return _parse(expression)


@lru_cache(maxsize=2048)
def _parse(expression: str) -> Formula:
    root = parse_expression(expression)
    references: set[str] = set()
    uses_now = False
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, FieldRef):
            references.add(node.name)
        elif isinstance(node, Negate):
            stack.append(node.operand)
        elif isinstance(node, BinaryChain):
            stack.append(node.first)
            stack.extend(operand for _, _, operand in node.rest)
        elif isinstance(node, Call):
            uses_now = uses_now or node.name in ("TODAY", "NOW")
            stack.extend(node.args)
    return Formula(expression, frozenset(references), uses_now, root)


def evaluate(formula: Formula, values: Mapping[str, Any], *, now: datetime, tz: ZoneInfo) -> Any:
    """Evaluate against resolved field values; never raises for bad data."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    run = _compiled.get(formula.expression)
    if run is None:
        run = _compiled[formula.expression] = _compile(formula.root)
        if len(_compiled) > 2048:
            _compiled.clear()
    with decimal.localcontext(_CONTEXT):
        try:
            result = run(_Evaluator(values, now.astimezone(timezone.utc), tz))
        except RecursionError:  # only when the caller's own stack is already very deep
            return FormulaValueError("formula is nested too deeply to evaluate here")
        return _to_python(result)


# ------------------------------------------------------------------------ value helpers


def _type_name(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return type(value).__name__


def _from_python(value: Any) -> Value:
    """A resolved field value in the internal domain."""
    if value.__class__ is float and math.isfinite(value):
        return Decimal(repr(value))
    if value is None or isinstance(value, (bool, str, FormulaValueError)):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return FormulaValueError("number is not finite")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value if value.is_finite() else FormulaValueError("number is not finite")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(_from_python(item)) for item in value)
    return FormulaValueError(f"unsupported value of type {type(value).__name__}")


def _to_python(value: Value) -> Any:
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and abs(value) < _MAX_EXACT_INT:
            return int(value)
        result = float(value)
        return result if math.isfinite(result) else FormulaValueError("number out of range")
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return value


def _format_number(value: Decimal) -> str:
    number = _to_python(value)
    if isinstance(number, FormulaValueError):
        return format(value, "f")
    text = repr(number)
    return format(Decimal(text), "f") if "e" in text else text


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _format_number(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    raise FormulaValueError(f"cannot show {_type_name(value)} as text")


def _truthy(value: Value) -> bool:
    if value is None:
        return False
    if isinstance(value, (bool, Decimal, str)):
        return bool(value)
    return True


def _number(value: Value, what: str) -> Decimal:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, Decimal):
        return value
    raise FormulaValueError(f"{what} needs a number, got {_type_name(value)}")


def _temporal(value: Value, what: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise FormulaValueError(f"{what} needs a date, got {_type_name(value)} {_text(value)!r}")


def _unit(value: Value, units: Mapping[str, str], what: str) -> str:
    if isinstance(value, str) and value.lower() in units:
        return units[value.lower()]
    raise FormulaValueError(f"{what}: unknown unit {_text(value)!r}")


# ---------------------------------------------------------------- operators


def _equals(a: Value, b: Value, tz: ZoneInfo) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, date) and isinstance(b, date):
        if isinstance(a, datetime) or isinstance(b, datetime):
            return dates.to_instant(a, tz) == dates.to_instant(b, tz)
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if type(a) is not type(b):
        return False
    return a == b


def _order(a: Value, b: Value, tz: ZoneInfo) -> int:
    """-1, 0 or 1; raises FormulaValueError for values that cannot be ordered."""
    left: Any = a
    right: Any = b
    if isinstance(a, date) and isinstance(b, date):
        if isinstance(a, datetime) or isinstance(b, datetime):
            left, right = dates.to_instant(a, tz), dates.to_instant(b, tz)
    elif type(a) is not type(b) or isinstance(a, FormulaValueError):
        raise FormulaValueError(f"cannot compare {_type_name(a)} with {_type_name(b)}")
    return int(left > right) - int(left < right)


_ORDERINGS: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    ">": lambda c: c > 0,
    "<=": lambda c: c <= 0,
    ">=": lambda c: c >= 0,
}


def _arithmetic(op: str, a: Value, b: Value) -> Value:
    if op == "+" and (isinstance(a, str) or isinstance(b, str)):
        return _text(a) + _text(b)
    if a is None or b is None:
        return None
    for operand in (a, b):
        if isinstance(operand, date):
            raise FormulaValueError(
                f"cannot use a {_type_name(operand)} with '{op}' (use DATEADD or DATEDIFF)"
            )
    x, y = _number(a, f"'{op}'"), _number(b, f"'{op}'")
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    return None if y == 0 else x / y


def _binary(op: str, a: Value, b: Value, tz: ZoneInfo) -> Value:
    if isinstance(a, FormulaValueError):
        return a
    if isinstance(b, FormulaValueError):
        return b
    if op == "=":
        return _equals(a, b, tz)
    if op == "!=":
        return not _equals(a, b, tz)
    if op in _ORDERINGS:
        if a is None or b is None:
            return None
        return _ORDERINGS[op](_order(a, b, tz))
    return _arithmetic(op, a, b)


# --------------------------------------------------------------------------- evaluator

Eager = Callable[["_Evaluator", list[Value]], Value]
Lazy = Callable[["_Evaluator", tuple[Node, ...]], Value]


class _Evaluator:
    def __init__(self, values: Mapping[str, Any], now: datetime, tz: ZoneInfo) -> None:
        self.values = values
        self.now = now
        self.tz = tz

    def eval(self, node: Node) -> Value:
        try:
            if isinstance(node, Literal):
                return node.value
            if isinstance(node, FieldRef):
                return _from_python(self.values.get(node.name))
            if isinstance(node, Negate):
                return self._negate(node)
            if isinstance(node, BinaryChain):
                return self._chain(node)
            return self._call(node)
        except FormulaValueError as error:
            return error
        except (ArithmeticError, ValueError) as error:  # OverflowError is an ArithmeticError
            return FormulaValueError(str(error) or type(error).__name__)

    def _negate(self, node: Negate) -> Value:
        value = self.eval(node.operand)
        if value is None or isinstance(value, FormulaValueError):
            return value
        number = _number(value, "'-'")
        return -number if node.count % 2 else number

    def _chain(self, node: BinaryChain) -> Value:
        result = self.eval(node.first)
        for op, _, operand in node.rest:
            if isinstance(result, FormulaValueError):
                return result
            result = _binary(op, result, self.eval(operand), self.tz)
        return result

    def _call(self, node: Call) -> Value:
        lazy = _LAZY.get(node.name)
        if lazy is not None:
            return lazy(self, node.args)
        args: list[Value] = []
        for node_arg in node.args:
            value = self.eval(node_arg)
            if isinstance(value, FormulaValueError) and node.name != "ISERROR":
                return value
            args.append(value)
        return _EAGER[node.name](self, args)


# Formulas are evaluated once per entry written, so each is turned once into nested closures
# that do what ``_Evaluator.eval`` does for its node without dispatching on the node's type
# each time. IF and SWITCH keep the interpreter for their branches (they evaluate lazily).
Compiled = Callable[[_Evaluator], Value]
_compiled: dict[str, Compiled] = {}


_DECIMAL_ARITHMETIC: dict[str, Callable[[Decimal, Decimal], Value]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": lambda x, y: None if y == 0 else x / y,
}


def _guarded(fn: Compiled) -> Compiled:
    """The error handling ``_Evaluator.eval`` applies around every node."""

    def run(ev: _Evaluator) -> Value:
        try:
            return fn(ev)
        except FormulaValueError as error:
            return error
        except (ArithmeticError, ValueError) as error:
            return FormulaValueError(str(error) or type(error).__name__)

    return run


def _compile(node: Node) -> Compiled:
    if isinstance(node, Literal):
        value = node.value
        return lambda ev: value
    if isinstance(node, FieldRef):
        name = node.name
        return _guarded(lambda ev: _from_python(ev.values.get(name)))
    if isinstance(node, Negate):
        operand = _compile(node.operand)
        odd = node.count % 2

        def negate(ev: _Evaluator) -> Value:
            value = operand(ev)
            if value is None or isinstance(value, FormulaValueError):
                return value
            number = _number(value, "'-'")
            return -number if odd else number

        return _guarded(negate)
    if isinstance(node, BinaryChain):
        first = _compile(node.first)
        rest = tuple((op, _compile(operand)) for op, _, operand in node.rest)

        def chain(ev: _Evaluator) -> Value:
            result = first(ev)
            for op, operand in rest:
                if isinstance(result, FormulaValueError):
                    return result
                right = operand(ev)
                if result.__class__ is Decimal and right.__class__ is Decimal and op in _DECIMAL_ARITHMETIC:
                    result = _DECIMAL_ARITHMETIC[op](result, right)  # what _arithmetic does for two numbers
                else:
                    result = _binary(op, result, right, ev.tz)
            return result

        return _guarded(chain)
    name = node.name
    lazy = _LAZY.get(name)
    if lazy is not None:
        args_nodes = node.args
        return _guarded(lambda ev: lazy(ev, args_nodes))
    eager = _EAGER[name]
    compiled_args = tuple(_compile(arg) for arg in node.args)
    stop_on_error = name != "ISERROR"

    def call(ev: _Evaluator) -> Value:
        args: list[Value] = []
        for arg in compiled_args:
            value = arg(ev)
            if stop_on_error and isinstance(value, FormulaValueError):
                return value
            args.append(value)
        return eager(ev, args)

    return _guarded(call)


# ----------------------------------------------------------------------------- functions


def _if(ev: _Evaluator, args: tuple[Node, ...]) -> Value:
    condition = ev.eval(args[0])
    if isinstance(condition, FormulaValueError):
        return condition
    if _truthy(condition):
        return ev.eval(args[1])
    return ev.eval(args[2]) if len(args) > 2 else None


def _switch(ev: _Evaluator, args: tuple[Node, ...]) -> Value:
    subject = ev.eval(args[0])
    if isinstance(subject, FormulaValueError):
        return subject
    rest = args[1:]
    pairs = len(rest) // 2
    for index in range(pairs):
        case = ev.eval(rest[2 * index])
        if isinstance(case, FormulaValueError):
            return case
        if _equals(subject, case, ev.tz):
            return ev.eval(rest[2 * index + 1])
    return ev.eval(rest[-1]) if len(rest) % 2 else None


def _empty(value: Value) -> bool:
    if value is None or value is False or value == "":
        return True
    return isinstance(value, Decimal) and value == 0


def _round(args: list[Value]) -> Value:
    if args[0] is None:
        return None
    number = _number(args[0], "ROUND")
    digits = _number(args[1], "ROUND digits") if len(args) > 1 and args[1] is not None else 0
    if digits != int(digits) or not -20 <= digits <= 20:
        raise FormulaValueError("ROUND digits must be a whole number between -20 and 20")
    exponent = -int(digits)
    if number.as_tuple().exponent >= exponent:  # type: ignore[operator]
        return number
    return number.quantize(Decimal(1).scaleb(exponent), rounding=decimal.ROUND_HALF_UP)


def _component(name: str, part: Callable[[date], int]) -> Eager:
    def extract(ev: _Evaluator, args: list[Value]) -> Value:
        if args[0] is None:
            return None
        value = _temporal(args[0], name)
        if isinstance(value, datetime):
            value = dates.to_local(value, ev.tz)
        return Decimal(part(value))

    return extract


def _clock(value: date, attribute: str) -> int:
    return getattr(value, attribute) if isinstance(value, datetime) else 0


def _date_add(sign: int) -> Eager:
    name = "DATEADD" if sign > 0 else "DATESUBTRACT"

    def shift(ev: _Evaluator, args: list[Value]) -> Value:
        if args[0] is None or args[1] is None:
            return None
        start = _temporal(args[0], name)
        amount = _number(args[1], name) * sign
        unit = _unit(args[2], ADD_UNITS, name)
        whole = amount == int(amount)
        return dates.add(start, int(amount) if whole else float(amount), unit, ev.tz)

    return shift


def _date_diff(ev: _Evaluator, args: list[Value]) -> Value:
    if args[0] is None or args[1] is None:
        return None
    start, end = _temporal(args[0], "DATEDIFF"), _temporal(args[1], "DATEDIFF")
    return Decimal(dates.diff(start, end, _unit(args[2], DIFF_UNITS, "DATEDIFF"), ev.tz))


def _text_function(transform: Callable[[str], str]) -> Eager:
    return lambda ev, args: None if args[0] is None else transform(_text(args[0]))


_LAZY: dict[str, Lazy] = {"IF": _if, "SWITCH": _switch}

_EAGER: dict[str, Eager] = {
    "AND": lambda ev, args: all(_truthy(arg) for arg in args),
    "OR": lambda ev, args: any(_truthy(arg) for arg in args),
    "NOT": lambda ev, args: not _truthy(args[0]),
    "EMPTY": lambda ev, args: _empty(args[0]),
    "ISERROR": lambda ev, args: isinstance(args[0], FormulaValueError),
    "ERROR": lambda ev, args: FormulaValueError(_text(args[0]) if args and args[0] else "ERROR()"),
    "BLANK": lambda ev, args: None,
    "TRUE": lambda ev, args: True,
    "FALSE": lambda ev, args: False,
    "CONCAT": lambda ev, args: "".join(_text(arg) for arg in args),
    "LEN": lambda ev, args: Decimal(len(_text(args[0]))),
    "LOWER": _text_function(str.lower),
    "UPPER": _text_function(str.upper),
    "TRIM": _text_function(str.strip),
    "ROUND": lambda ev, args: _round(args),
    "TODAY": lambda ev, args: ev.now.astimezone(ev.tz).date(),
    "NOW": lambda ev, args: ev.now,
    "YEAR": _component("YEAR", lambda d: d.year),
    "MONTH": _component("MONTH", lambda d: d.month),
    "DATE": _component("DATE", lambda d: d.day),
    "DAY": _component("DAY", lambda d: d.isoweekday() % 7),
    "HOUR": _component("HOUR", lambda d: _clock(d, "hour")),
    "MINUTE": _component("MINUTE", lambda d: _clock(d, "minute")),
    "DATEADD": _date_add(1),
    "DATESUBTRACT": _date_add(-1),
    "DATEDIFF": _date_diff,
}

assert set(_LAZY) | set(_EAGER) == set(FUNCTIONS), "function table out of sync with the parser"
