"""Calendar arithmetic for formulas: DATEADD / DATESUBTRACT / DATEDIFF and friends.

Conventions (see app.store.formula for the user-facing summary):

* A ``date`` has no time; where it must meet a datetime it stands for local midnight in the
  organization's timezone.
* Calendar units (years, months, weeks, days) on a datetime move the wall clock in that
  timezone; time units (hours, minutes, seconds) are absolute durations.
* Month arithmetic clamps to the end of the month: Jan 31 + 1 month = Feb 28 (Feb 29 in leap
  years); Feb 29 + 1 year = Feb 28.
* DATEDIFF counts whole units, truncated toward zero, and is negative when start > end. For
  months and years it is the largest k with ``DATEADD(start, k, unit) <= end``, so it agrees with
  the clamping above.

Functions raise ValueError / OverflowError for out-of-range dates; the evaluator turns those into
formula errors.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone
from typing import TypeVar
from zoneinfo import ZoneInfo

__all__ = ["add", "diff", "local_midnight", "to_local", "add_months"]

D = TypeVar("D", date, datetime)

_TIME_UNITS = {"hours": 3600, "minutes": 60, "seconds": 1}


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The aware UTC instant at which ``day`` starts in ``tz``."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(timezone.utc)


def to_instant(value: date, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return local_midnight(value, tz)


def to_local(value: datetime, tz: ZoneInfo) -> datetime:
    """An aware datetime as a naive wall-clock time in ``tz``."""
    return value.astimezone(tz).replace(tzinfo=None)


def add_months(value: D, months: int) -> D:
    years, month_index = divmod(value.month - 1 + months, 12)
    year, month = value.year + years, month_index + 1
    day = min(value.day, calendar.monthrange(year, month)[1]) if 1 <= year <= 9999 else value.day
    return value.replace(year=year, month=month, day=day)


def _shift_calendar(value: D, amount: int, unit: str) -> D:
    if unit == "years":
        return add_months(value, 12 * amount)
    if unit == "months":
        return add_months(value, amount)
    if unit == "weeks":
        return value + timedelta(weeks=amount)
    return value + timedelta(days=amount)


def add(value: date, amount: int | float, unit: str, tz: ZoneInfo) -> date:
    """``value`` moved by ``amount`` units; a date stays a date for calendar units."""
    if unit in _TIME_UNITS:
        return to_instant(value, tz) + timedelta(seconds=amount * _TIME_UNITS[unit])
    whole = int(amount)
    if whole != amount:
        raise ValueError(f"DATEADD needs a whole number of {unit}")
    if isinstance(value, datetime):
        shifted = _shift_calendar(to_local(value, tz), whole, unit)
        return shifted.replace(tzinfo=tz).astimezone(timezone.utc)
    return _shift_calendar(value, whole, unit)


def _whole_months(start: D, end: D) -> int:
    """Largest k >= 0 with add_months(start, k) <= end; requires start <= end."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and add_months(start, months) > end:
        months -= 1
    return months


def _truncated(numerator: int, denominator: int) -> int:
    sign = -1 if numerator < 0 else 1
    return sign * (abs(numerator) // denominator)


def diff(start: date, end: date, unit: str, tz: ZoneInfo) -> int:
    """Whole ``unit``s from ``start`` to ``end``, truncated toward zero."""
    if unit in _TIME_UNITS:
        delta = to_instant(end, tz) - to_instant(start, tz)
        microseconds = delta // timedelta(microseconds=1)
        return _truncated(microseconds, _TIME_UNITS[unit] * 1_000_000)
    both_datetimes = isinstance(start, datetime) and isinstance(end, datetime)
    if both_datetimes and unit in ("days", "weeks"):
        delta = end - start
        per_unit = 7 * 86400 if unit == "weeks" else 86400
        return _truncated(delta // timedelta(microseconds=1), per_unit * 1_000_000)
    a: date
    b: date
    if both_datetimes:
        assert isinstance(start, datetime) and isinstance(end, datetime)
        a, b = to_local(start, tz), to_local(end, tz)
    else:
        a, b = _local_date(start, tz), _local_date(end, tz)
    if unit in ("days", "weeks"):
        days = (b - a).days
        return days if unit == "days" else _truncated(days, 7)
    sign = 1
    if a > b:
        a, b, sign = b, a, -1
    months = _whole_months(a, b)
    return sign * (months if unit == "months" else months // 12)


def _local_date(value: date, tz: ZoneInfo) -> date:
    if isinstance(value, datetime):
        return value.astimezone(tz).date()
    return value
