"""The server's VAPID key: generated once into the data directory unless configured."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from app.kernel import vapid
from app.kernel.config import Settings


def test_generated_once_and_kept(tmp_path: Path) -> None:
    first = vapid.load(Settings(data_dir=tmp_path / "a", bootstrap_email="ops@acme.example"))
    path = tmp_path / "a" / vapid.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    vapid._cache.clear()  # as a new process would
    again = vapid.load(Settings(data_dir=tmp_path / "a", bootstrap_email="ops@acme.example"))
    assert again.public_key == first.public_key and first.subject == "mailto:ops@acme.example"
    raw = base64.urlsafe_b64decode(first.public_key + "=" * (-len(first.public_key) % 4))
    assert len(raw) == 65 and raw[0] == 4  # an uncompressed P-256 point, as browsers take it
    other = vapid.load(Settings(data_dir=tmp_path / "b"))
    assert other.public_key != first.public_key


def test_configured_key_wins_in_either_form(tmp_path: Path) -> None:
    generated = vapid.load(Settings(data_dir=tmp_path / "gen"))
    as_pem = vapid.load(Settings(data_dir=tmp_path / "x", vapid_private_key=generated.private_pem, vapid_subject="https://acme.example"))
    scalar = generated.private_key.private_numbers().private_value.to_bytes(32, "big")
    as_raw = vapid.load(Settings(data_dir=tmp_path / "y", vapid_private_key=vapid.b64url(scalar)))
    assert as_pem.public_key == as_raw.public_key == generated.public_key
    assert as_pem.subject == "https://acme.example"
    assert not (tmp_path / "x" / vapid.KEY_FILE).exists()
    with pytest.raises(ValueError, match="not a P-256 private key"):
        vapid.load(Settings(data_dir=tmp_path / "z", vapid_private_key="bm90IGEga2V5"))
