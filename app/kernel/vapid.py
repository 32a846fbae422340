"""This server's VAPID key (RFC 8292): how Web Push services know pushes come from us.

Configured (``SWITCHBOARD_VAPID_PRIVATE_KEY``, PEM or base64url of the raw 32-byte P-256
scalar) or generated once into ``<data dir>/vapid.pem``. Browsers subscribe with the public
key (``applicationServerKey``); changing it invalidates every web subscription.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .config import Settings
from .crypto import write_once

__all__ = ["VapidKey", "load", "b64url"]

KEY_FILE = "vapid.pem"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class VapidKey:
    private_key: ec.EllipticCurvePrivateKey
    subject: str

    @property
    def public_key(self) -> str:
        """base64url of the uncompressed point: what browsers take as ``applicationServerKey``."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def _parse(text: str, source: str) -> ec.EllipticCurvePrivateKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if len(raw) != 32:
                raise ValueError("a raw P-256 key is 32 bytes")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError(f"{source} is not a P-256 private key (PEM or base64url)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{source} must be a P-256 (prime256v1) key")
    return key


_cache: dict[tuple[str, str, str], VapidKey] = {}


def load(settings: Settings) -> VapidKey:
    """The configured key, else the data dir's, created on first use."""
    subject = settings.vapid_subject or f"mailto:{settings.bootstrap_email}"
    cache_key = (settings.vapid_private_key, str(Path(settings.data_dir).resolve()), subject)
    if cache_key in _cache:
        return _cache[cache_key]
    if settings.vapid_private_key:
        key = _parse(settings.vapid_private_key, "SWITCHBOARD_VAPID_PRIVATE_KEY")
    else:
        path = Path(settings.data_dir) / KEY_FILE
        if path.exists():
            text = path.read_text()
        else:
            fresh = ec.generate_private_key(ec.SECP256R1())
            text = write_once(path, VapidKey(fresh, subject).private_pem)
        key = _parse(text, str(path))
    _cache[cache_key] = loaded = VapidKey(key, subject)
    return loaded
