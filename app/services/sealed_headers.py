"""Header sets that carry secrets (a receiver's own token, an MCP server's key).

Values are encrypted for their owner and shown as ``MASK``; a client that edits a set sends
the mask back for a value it leaves alone, which keeps the stored one.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Collection, Mapping

from ..kernel import crypto

__all__ = ["MASK", "MAX_HEADERS", "seal", "masked", "unseal"]

log = logging.getLogger(__name__)

MASK = "********"
MAX_HEADERS = 20
MAX_VALUE = 8192
_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # an HTTP token (RFC 9110)
_VALUE = re.compile(r"^[\t\x20-\x7e]*$")  # visible ASCII, spaces and tabs: what every HTTP client sends as is


def seal(
    value: Any,
    *,
    owner: str,
    before: Mapping[str, str] | None,
    path: str,
    problems: dict[str, list[str]],
    reserved: Collection[str] = (),
) -> dict[str, str]:
    """``value`` ({name: value}) checked and sealed; problems are added under ``path``.
    ``before``: the stored set, for masks sent back. ``reserved``: lower-case names (or
    prefixes ending in ``-``) the gateway sets itself."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        problems[path] = [f"must be an object of at most {MAX_HEADERS} header names and values"]
        return {}
    sealed: dict[str, str] = {}
    for name, header in value.items():
        where = f"{path}.{name}"
        lower = name.lower()
        if not _NAME.match(name):
            problems[where] = ["is not a valid header name"]
        elif any(lower == r or (r.endswith("-") and lower.startswith(r)) for r in reserved):
            problems[where] = ["is set by the gateway itself"]
        elif not isinstance(header, str) or not _VALUE.match(header) or len(header) > MAX_VALUE:
            problems[where] = [f"must be visible ASCII on one line, at most {MAX_VALUE} characters"]
        elif header == MASK and before and name in before:
            sealed[name] = before[name]  # shown masked, sent back unchanged: keep it
        elif header == MASK:
            problems[where] = ["is the mask of a value that is not stored; send the value"]
        else:
            sealed[name] = crypto.encrypt(header, owner)
    return sealed


def masked(sealed: Mapping[str, str] | None) -> dict[str, str]:
    return {name: MASK for name in sealed or {}}


def unseal(sealed: Mapping[str, str] | None, owner: str) -> dict[str, str]:
    """The values as sent; one that no longer decrypts (a changed server key) is left out."""
    out = {}
    for name, value in (sealed or {}).items():
        try:
            out[name] = crypto.decrypt(value, owner)
        except crypto.CryptoError:
            log.error("header %s of %s does not decrypt (check SWITCHBOARD_SECRET_KEY); sent without it", name, owner)
    return out
