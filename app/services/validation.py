"""Small shared validators for values that several services accept."""

from __future__ import annotations

import re

from ..errors import ValidationFailed

__all__ = ["normalize_email", "check_password", "EMAIL_RE"]

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
