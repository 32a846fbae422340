"""Opaque keyset cursors: what a page ended on, encoded so clients treat it as a token."""

from __future__ import annotations

import base64
import json
from typing import Any

from .errors import ValidationFailed

__all__ = ["encode_cursor", "decode_cursor"]


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
