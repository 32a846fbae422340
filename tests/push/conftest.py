"""Push tests: the app with its APNs channel pointed at two fake APNs servers (production and
sandbox, HTTP/2 over TLS, checking the provider token) and Web Push subscriptions at a fake
push service that checks VAPID and decrypts every body."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from app.kernel.config import Settings
from app.kernel.vapid import VapidKey
from tests.fakes.apns import FakeAPNs, make_provider_key
from tests.fakes.webpush import FakePushService

TEAM_ID, KEY_ID, BUNDLE = "TEAM123456", "KEY1234567", "com.example.switchboard"


@dataclass
class Fakes:
    apns: FakeAPNs  # production
    sandbox: FakeAPNs
    web: FakePushService
    key_file: Path
    vapid_pem: str


@pytest.fixture
async def fakes(tmp_path: Path) -> AsyncIterator[Fakes]:
    private, public = make_provider_key()
    key_file = tmp_path / "AuthKey_TEST.p8"
    key_file.write_text(private)
    from cryptography.hazmat.primitives.asymmetric import ec

    vapid = VapidKey(ec.generate_private_key(ec.SECP256R1()), "mailto:ops@example.com")
    apns = await FakeAPNs(TEAM_ID, KEY_ID, public, topics={BUNDLE}, name="production").start(tmp_path)
    sandbox = await FakeAPNs(TEAM_ID, KEY_ID, public, topics={BUNDLE}, name="sandbox").start(tmp_path, apns.certificate)
    web = await FakePushService(vapid_public_key=vapid.public_key).start()
    try:
        yield Fakes(apns, sandbox, web, key_file, vapid.private_pem)
    finally:
        await apns.stop()
        await sandbox.stop()
        await web.stop()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, fakes: Fakes) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        allow_private_webhooks=True,
        apns_key_file=str(fakes.key_file),
        apns_key_id=KEY_ID,
        apns_team_id=TEAM_ID,
        apns_topic=BUNDLE,
        apns_url=fakes.apns.url,
        apns_sandbox_url=fakes.sandbox.url,
        apns_ca_file=str(fakes.apns.ca_file),  # both fakes share one self-signed certificate
        vapid_private_key=fakes.vapid_pem,
        vapid_subject="mailto:ops@example.com",
        push_send_wait_seconds=5.0,
    )


def ios_token() -> str:
    import secrets

    return secrets.token_hex(32)


async def register_ios(client: Any, session: str, token: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"platform": "ios", "token": token or ios_token(), "bundle_id": BUNDLE, **extra}
    r = await client.post("/api/v1/push/devices", json=body, headers={"Authorization": f"Bearer {session}"})
    assert r.status_code in (200, 201), await r.get_data(as_text=True)
    return (await r.get_json())["device"]  # type: ignore[no-any-return]


async def register_web(client: Any, session: str, subscription: dict[str, Any]) -> dict[str, Any]:
    body = {"platform": "web", "subscription": subscription, "name": "Firefox"}
    r = await client.post("/api/v1/push/devices", json=body, headers={"Authorization": f"Bearer {session}"})
    assert r.status_code in (200, 201), await r.get_data(as_text=True)
    return (await r.get_json())["device"]  # type: ignore[no-any-return]
