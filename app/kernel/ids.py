"""Prefixed, URL-safe, unguessable identifiers — the one place ids and secrets are made."""

from __future__ import annotations

import secrets
import string
import time

__all__ = ["new_id", "new_sortable_id", "new_sortable_ids", "new_secret", "could_be_id", "PREFIXES", "MAX_ID_LENGTH"]

_ALPHABET = string.ascii_letters + string.digits
# The id columns' width: every id made here fits (the longest prefix, "_", 8 + 17 characters).
MAX_ID_LENGTH = 32
_ID_CHARS = frozenset(_ALPHABET + "_-")

# Every object kind and its prefix, so a stray id is recognisable at a glance.
PREFIXES = {
    "organization": "org",
    "user": "usr",
    "api_key": "key",
    "session": "ses",
    "invite": "inv",
    "membership": "mbr",
    "password_reset": "prs",
    "request": "req",
    "agent": "agt",
    "conversation": "conv",
    "message": "msg",
    "delivery": "dlv",
    "device": "dev",
    "notification": "ntf",
    "live_activity_token": "lat",
    "action_token": "act",
    "database": "db",
    "table": "tb",
    "field": "fd",
    "option": "op",
    "entry": "en",
    "file": "file",
    "webhook": "whk",
    "event": "evt",
    "credential": "cred",
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


# Digits, then upper case, then lower case: base62 strings of equal length in this alphabet
# sort bytewise in numeric order.
_ORDERED = string.digits + string.ascii_uppercase + string.ascii_lowercase
_TIME_CHARS = 8  # milliseconds since the epoch: 62**8 ms is about 6,900 years
_SORTABLE_RANDOM = 17  # ~101 bits
_BYTE_TO_CHAR = bytes(ord(_ORDERED[b % 62]) for b in range(256))


def _ordered(n: int, length: int) -> str:
    out = []
    for _ in range(length):
        n, r = divmod(n, 62)
        out.append(_ORDERED[r])
    return "".join(reversed(out))


def new_sortable_ids(kind: str, count: int) -> list[str]:
    """``count`` ids such as ``en_<time><random>`` that sort (bytewise) by creation time.

    For objects created in bulk: a unique index over them takes appends instead of inserts at
    random positions. The creation time (milliseconds) is visible in the id; the random part,
    17 characters each drawn from one random byte (~5.94 bits each, ~101 bits in all), keeps
    ids unguessable. One random read serves the whole batch."""
    if count <= 0:
        return []
    prefix = f"{PREFIXES[kind]}_{_ordered(time.time_ns() // 1_000_000, _TIME_CHARS)}"
    n = _SORTABLE_RANDOM
    text = secrets.token_bytes(n * count).translate(_BYTE_TO_CHAR).decode("ascii")
    return [prefix + text[i : i + n] for i in range(0, n * count, n)]


def new_sortable_id(kind: str) -> str:
    """One id of ``new_sortable_ids``."""
    return new_sortable_ids(kind, 1)[0]


def could_be_id(value: str) -> bool:
    """Whether ``value`` could be an id made here: one that cannot names nothing (a lookup by
    it is a 404, not a value the database refuses)."""
    return 0 < len(value) <= MAX_ID_LENGTH and _ID_CHARS.issuperset(value)


def new_secret(prefix: str, length: int = 43) -> str:
    """A bearer secret such as ``ak_...`` (API key), ``st_...`` (session) or ``whsec_...``."""
    return f"{prefix}_{secrets.token_urlsafe(length)[:length]}"
