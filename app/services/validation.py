"""Small shared validators for values that several services accept."""

from __future__ import annotations

import re

from channels.webhook import UnsafeURL, check_url

from ..kernel.errors import ValidationFailed

__all__ = ["normalize_email", "check_password", "check_name", "check_outbound_url", "check_wait", "EMAIL_RE", "MAX_WAIT_SECONDS"]

# The longest a request waits for something to happen (an answer, a reply).
MAX_WAIT_SECONDS = 60

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")


def normalize_email(email: str, field: str = "email") -> tuple[str, str]:
    """Return (email as written, its case-insensitive key)."""
    email = (email or "").strip()
    if len(email) > 320 or not EMAIL_RE.match(email):
        raise ValidationFailed(details={field: ["must be a valid email address"]})
    return email, email.lower()


def check_password(password: str, field: str = "password") -> None:
    if not isinstance(password, str) or len(password) < 8:
        raise ValidationFailed(details={field: ["must be at least 8 characters"]})
    if len(password) > 1024:
        raise ValidationFailed(details={field: ["must be at most 1024 characters"]})


def check_wait(wait: float, field: str = "wait") -> None:
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise ValidationFailed(details={field: [f"must be between 0 and {MAX_WAIT_SECONDS} seconds"]})


def check_name(name: str, field: str = "name", *, max_length: int = 200) -> str:
    """A display name: trimmed, non-empty, at most ``max_length`` characters."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(details={field: ["must not be empty"]})
    if len(name) > max_length:
        raise ValidationFailed(details={field: [f"must be at most {max_length} characters"]})
    return name


async def check_outbound_url(field: str, url: str | None, *, allow_private: bool) -> str | None:
    """A URL the gateway will call (webhook, callback): trimmed, at most 2,048 characters,
    http(s), and no private address unless allowed. Empty is ``None``."""
    url = (url or "").strip()
    if not url:
        return None
    if len(url) > 2048:
        raise ValidationFailed(details={field: ["must be at most 2048 characters"]})
    try:
        await check_url(url, allow_private=allow_private)
    except UnsafeURL as exc:
        raise ValidationFailed(details={field: [str(exc)]}) from exc
    return url
