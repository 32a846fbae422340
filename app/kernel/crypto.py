"""Secrets at rest (webhook signing secrets): AES-256-GCM under the server's key.

The key is ``SWITCHBOARD_SECRET_KEY`` (32 bytes, standard or URL-safe base64) or, when that
is unset, a key generated once into ``<data dir>/secret.key`` (mode 0600). Gateway processes
sharing one database must share the key, so set the variable when you run more than one.

Stored form: ``enc:v1:`` + URL-safe base64 of nonce (12 bytes) + ciphertext + tag. The
associated data names the value's owner (``agent:agt_...``): a ciphertext copied to another
row does not decrypt. A value without the prefix is a row written before encryption and is
read as plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import Settings

__all__ = ["CryptoError", "configure", "derived_key", "encrypt", "decrypt", "is_encrypted", "load_key", "write_once", "PREFIX"]

PREFIX = "enc:v1:"
KEY_FILE = "secret.key"
_NONCE_BYTES = 12

_aead: AESGCM | None = None
_master: bytes | None = None


class CryptoError(Exception):
    """A value that cannot be decrypted with this key, or a key that is not usable."""


def _decode_key(text: str, source: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        key = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError) as exc:
        raise CryptoError(f"{source} is not base64") from exc
    if len(key) != 32:
        raise CryptoError(f"{source} must decode to 32 bytes, not {len(key)}")
    return key


def load_key(settings: Settings) -> bytes:
    """The configured key, else the data dir's key file, created on first use."""
    if settings.secret_key:
        return _decode_key(settings.secret_key, "SWITCHBOARD_SECRET_KEY")
    path = Path(settings.data_dir) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _decode_key(path.read_text(), str(path))
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return _decode_key(write_once(path, text + "\n"), str(path))


def write_once(path: Path, text: str) -> str:
    """Create ``path`` (mode 0600) holding ``text`` unless it exists; return what it holds.

    Written whole to a private temporary file, then linked into place: the file is never seen
    empty or half-written, and of two processes starting together the first link wins and
    both use its contents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text()
    finally:
        tmp.unlink(missing_ok=True)
    return text


def configure(settings: Settings) -> None:
    global _aead, _master
    _master = load_key(settings)
    _aead = AESGCM(_master)


def derived_key(purpose: str) -> bytes:
    """A key for one purpose (signing file URLs, say), derived from the server's key: the
    secret key itself never signs anything a client sees."""
    if _master is None:
        raise CryptoError("no secret key is configured")
    return hmac.new(_master, b"switchboard:" + purpose.encode(), hashlib.sha256).digest()


def _cipher() -> AESGCM:
    if _aead is None:
        raise CryptoError("no secret key is configured")
    return _aead


def is_encrypted(value: str | None) -> bool:
    return bool(value) and value.startswith(PREFIX)  # type: ignore[union-attr]


def encrypt(plaintext: str, owner: str) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = _cipher().encrypt(nonce, plaintext.encode(), owner.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def decrypt(value: str, owner: str) -> str:
    if not is_encrypted(value):
        return value  # written before secrets were encrypted
    raw = value[len(PREFIX) :]
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        return _cipher().decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], owner.encode()).decode()
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise CryptoError("the value does not decrypt with this server's secret key") from exc
