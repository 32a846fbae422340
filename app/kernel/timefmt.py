"""Times in JSON: ISO 8601 UTC with a ``Z``."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
