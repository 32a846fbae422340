"""Opaque keyset cursors: what a page ended on, encoded so clients treat it as a token.

``newest_first`` / ``next_page`` are the one implementation of the (created_at, id)
newest-first keyset used by the conversation and delivery lists."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Sequence, TypeVar

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from .errors import ValidationFailed

__all__ = ["encode_cursor", "decode_cursor", "newest_first", "next_page"]

T = TypeVar("T")


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, field: str = "cursor") -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(details={field: ["is not a valid cursor"]}) from None
    if not isinstance(value, dict):
        raise ValidationFailed(details={field: ["is not a valid cursor"]})
    return value


def newest_first(query: "QuerySet[Any]", cursor: str | None, limit: int, field: str = "cursor") -> "QuerySet[Any]":
    """``query`` ordered newest first on (created_at, id), after ``cursor``, one row more than
    ``limit`` (``next_page`` uses it to tell whether there is a next page)."""
    if cursor:
        position = decode_cursor(cursor, field)
        try:
            at = datetime.fromisoformat(str(position["t"]))
            last_id = str(position["id"])
        except (KeyError, ValueError):
            raise ValidationFailed(details={field: ["is not a valid cursor"]}) from None
        query = query.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=last_id))
    return query.order_by("-created_at", "-id").limit(limit + 1)


def next_page(rows: Sequence[T], limit: int) -> tuple[list[T], str | None]:
    """The page and the cursor of the next one (None on the last page)."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    last: Any = page[-1]
    return page, encode_cursor({"t": last.created_at.isoformat(), "id": last.id})
