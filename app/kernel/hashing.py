"""Hashing of passwords (argon2) and of high-entropy bearer secrets (SHA-256)."""

from __future__ import annotations

import asyncio
import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "verify_password", "hash_token"]

_hasher = PasswordHasher()
# Verified when the email is unknown, so a wrong email costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("switchboard-dummy-password")


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# argon2 costs ~50-100 ms of CPU by design: run it in a worker thread so a burst of logins
# never stalls the event loop (and with it every socket and delivery).
async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


def hash_token(token: str) -> str:
    """API keys and session tokens carry >= 200 bits of entropy, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()
