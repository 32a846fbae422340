"""The formula language, driven by tests/store/formula_golden.json.

Each golden case is {"formula", "values", "now"?, "tz"?, "expect"} or {"formula", "syntax_error":
{"position"}}. Values and results use JSON stand-ins: {"date": "YYYY-MM-DD"}, {"datetime":
"...Z"}, {"decimal": "2.50"}, {"error": "message"} (an upstream error value) and, for results,
{"error": true}.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.store.formula import FormulaSyntaxError, FormulaValueError, evaluate, parse

GOLDEN = json.loads((Path(__file__).parent / "formula_golden.json").read_text(encoding="utf-8"))
DEFAULT_NOW = "2024-03-15T12:00:00Z"
UTC = ZoneInfo("UTC")

SEED_EXAMPLES = [
    "{Price} * {Quantity}",
    'IF({Status} = "Done", "Complete", IF({Status} = "In progress", "Active", "Not started"))',
    'DATEDIFF(TODAY(), {Due Date}, "days")',
    'CONCAT({First Name}, " ", {Last Name})',
    'IF(EMPTY({Email}), "Missing email", {Email})',
    'IF({Score} >= 90, "A", IF({Score} >= 80, "B", IF({Score} >= 70, "C", "F")))',
    'DATEADD({Close Date}, 14, "days")',
    'DATEDIFF({created_date}, TODAY(), "days")',
    'IF({Status} = "Done", "Complete", "Pending")',
    'IF({Score} >= 90, "A", IF({Score} >= 80, "B", "C"))',
    'CONCAT("$", {Price})',
    'IF(EMPTY({Notes}), "No notes", {Notes})',
    'IF(EMPTY({Email}), "Missing", "Has email")',
    'DATEADD({Start Date}, 7, "days")',
    'DATEADD({Due Date}, 1, "months")',
    'DATEADD(TODAY(), 14, "days")',
    'DATESUBTRACT({Due Date}, 1, "months")',
    'DATESUBTRACT({End Date}, 3, "weeks")',
    'DATEDIFF({Start Date}, {End Date}, "days")',
    'DATEDIFF({Created Date}, TODAY(), "weeks")',
    "({Price} + {Tax}) * 1.1",
    "{Total} / {Count}",
]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "date" in value:
            return date.fromisoformat(value["date"])
        if "datetime" in value:
            return _instant(value["datetime"])
        if "decimal" in value:
            return Decimal(value["decimal"])
        if "error" in value:
            return FormulaValueError(value["error"])
        raise AssertionError(f"unknown value stand-in {value!r}")
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    return value


def encode_result(result: Any) -> Any:
    if isinstance(result, FormulaValueError):
        return {"error": True}
    if isinstance(result, datetime):
        assert result.tzinfo is not None and result.utcoffset().total_seconds() == 0
        return {"datetime": result.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if isinstance(result, date):
        return {"date": result.isoformat()}
    assert result is None or isinstance(result, (str, bool, int, float)), type(result)
    return result


def _case_id(index: int, case: dict[str, Any]) -> str:
    formula = case["formula"]
    return f"{index:03d}:{formula if len(formula) <= 60 else formula[:57] + '...'}"


@pytest.mark.parametrize(
    "case", GOLDEN, ids=[_case_id(i, case) for i, case in enumerate(GOLDEN)]
)
def test_golden(case: dict[str, Any]) -> None:
    if "syntax_error" in case:
        with pytest.raises(FormulaSyntaxError) as caught:
            parse(case["formula"])
        assert caught.value.position == case["syntax_error"]["position"], caught.value.message
        return
    formula = parse(case["formula"])
    values = {name: decode_value(value) for name, value in case["values"].items()}
    result = evaluate(
        formula,
        values,
        now=_instant(case.get("now", DEFAULT_NOW)),
        tz=ZoneInfo(case.get("tz", "UTC")),
    )
    expected = case["expect"]
    assert encode_result(result) == expected
    # ints stay ints, floats stay floats, booleans stay booleans
    assert type(encode_result(result)) is type(expected)


def test_golden_file_is_broad() -> None:
    assert len(GOLDEN) >= 220
    formulas = {case["formula"] for case in GOLDEN}
    missing = [example for example in SEED_EXAMPLES if example.replace(" / ", "/") not in formulas]
    assert not missing, missing
    assert sum("syntax_error" in case for case in GOLDEN) >= 30


def test_references_lists_every_field_once() -> None:
    formula = parse(
        'IF({Status} = "Done", CONCAT({id}, {Price} * {Price}), DATEDIFF({created_date}, '
        'TODAY(), "days"))'
    )
    assert formula.references == frozenset({"Status", "id", "Price", "created_date"})
    assert parse('"{not a field}" + 1').references == frozenset()
    assert parse("{Total (USD)} + {total (usd)}").references == {"Total (USD)", "total (usd)"}


@pytest.mark.parametrize(
    ("expression", "uses_now"),
    [
        ("TODAY()", True),
        ("IF({A}, 1, DATEADD(now(), 1, \"day\"))", True),
        ('DATEDIFF({created_date}, {updated_date}, "days")', False),
        ("{Price} * 2", False),
        ('"TODAY()"', False),
    ],
)
def test_uses_now(expression: str, uses_now: bool) -> None:
    assert parse(expression).uses_now is uses_now


def test_syntax_error_carries_message_and_position() -> None:
    with pytest.raises(FormulaSyntaxError) as caught:
        parse("1 + NOPE(2)")
    assert caught.value.position == 4
    assert "unknown function" in caught.value.message
    assert "position 4" in str(caught.value)
    with pytest.raises(FormulaSyntaxError) as caught:
        parse("IF(1)")
    assert caught.value.message == "IF expects 2 to 3 arguments, got 1"


def test_error_values_carry_their_message() -> None:
    now = datetime(2024, 3, 15, tzinfo=timezone.utc)
    result = evaluate(parse('ERROR("stock is negative")'), {}, now=now, tz=UTC)
    assert isinstance(result, FormulaValueError) and result.message == "stock is negative"
    result = evaluate(parse('YEAR("soon")'), {}, now=now, tz=UTC)
    assert isinstance(result, FormulaValueError) and "YEAR" in result.message


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), Decimal("NaN"), object(), {"a": 1}, b"bytes"]
)
def test_unusual_values_become_errors_not_exceptions(value: Any) -> None:
    now = datetime(2024, 3, 15, tzinfo=timezone.utc)
    result = evaluate(parse("{X} + 1"), {"X": value}, now=now, tz=UTC)
    assert isinstance(result, FormulaValueError)


def test_huge_numbers_do_not_raise() -> None:
    now = datetime(2024, 3, 15, tzinfo=timezone.utc)
    big = "*".join(["1000000000"] * 120)
    assert isinstance(evaluate(parse(big), {}, now=now, tz=UTC), FormulaValueError)
    assert evaluate(parse("{X} * 10"), {"X": 10**20}, now=now, tz=UTC) == 1e21


def test_naive_now_and_values_are_taken_as_utc() -> None:
    formula = parse('DATEDIFF({At}, NOW(), "hours")')
    values = {"At": datetime(2024, 3, 15, 9)}
    result = evaluate(formula, values, now=datetime(2024, 3, 15, 12), tz=UTC)
    assert result == 3


def test_parse_is_reusable_across_evaluations() -> None:
    formula = parse("{A} * 2")
    now = datetime(2024, 3, 15, tzinfo=timezone.utc)
    assert [evaluate(formula, {"A": n}, now=now, tz=UTC) for n in (1, 2.5, None)] == [2, 5, None]
    assert parse("{A} * 2") is formula
