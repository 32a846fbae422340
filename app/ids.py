"""Prefixed, URL-safe, unguessable identifiers — the one place ids and secrets are made."""

from __future__ import annotations

import secrets
import string

__all__ = ["new_id", "new_secret", "PREFIXES"]

_ALPHABET = string.ascii_letters + string.digits

# Every object kind and its prefix, so a stray id is recognisable at a glance.
PREFIXES = {
    "organization": "org",
    "user": "usr",
    "api_key": "key",
    "session": "ses",
    "invite": "inv",
    "request": "req",
    "agent": "agt",
    "conversation": "conv",
    "message": "msg",
    "delivery": "dlv",
    "device": "dev",
    "notification": "ntf",
    "database": "db",
    "table": "tb",
    "field": "fd",
    "option": "op",
    "entry": "en",
    "file": "file",
    "webhook": "whk",
}


def _random(length: int) -> str:
    # base62 of a random integer: one syscall per id, cheap enough for bulk imports.
    n = int.from_bytes(secrets.token_bytes(length), "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


def new_id(kind: str, length: int = 20) -> str:
    """An object id such as ``conv_3kT...``: ~119 bits of randomness at the default length."""
    return f"{PREFIXES[kind]}_{_random(length)}"


def new_secret(prefix: str, length: int = 43) -> str:
    """A bearer secret such as ``ak_...`` (API key), ``st_...`` (session) or ``whsec_...``."""
    return f"{prefix}_{secrets.token_urlsafe(length)[:length]}"
