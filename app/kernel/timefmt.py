"""Times in JSON: ISO 8601 UTC with a ``Z``."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso", "utcnow", "parse_moment"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_moment(text: str) -> datetime | None:
    """An ISO 8601 date-time with a time zone (``Z`` or an offset) as a UTC datetime; None
    for anything else, including a moment whose UTC falls outside the years 1-9999."""
    try:
        moment = datetime.fromisoformat(text)
        return moment.astimezone(timezone.utc) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
