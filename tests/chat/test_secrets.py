"""Webhook signing secrets are encrypted at rest, rows written before that keep working, and
the key comes from SWITCHBOARD_SECRET_KEY or a 0600 key file in the data dir."""

from __future__ import annotations

import base64
import os
import stat

import httpx
import pytest

from app.serving.app import create_app
from app.kernel.config import Settings
from app.kernel.crypto import CryptoError
from app.models.chat import Agent
from tests.chat.conftest import running_server
from tests.chat.test_webhooks import conversation, send, webhook_agent
from tests.conftest import DrainOutbox, LiveServer, Orgs, make_org
from tests.fakes.webhook_receiver import WebhookReceiver


async def test_secrets_are_stored_encrypted_and_still_sign(live_server: LiveServer, live_orgs: Orgs, http, receiver, drain_outbox: DrainOutbox) -> None:
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    secret = agent["signing_secret"]
    row = await Agent.get(id=agent["id"])
    assert row.signing_secret.startswith("enc:v1:") and secret not in row.signing_secret
    key_file = live_server.settings.data_dir / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    rotated = (await http.post(f"/api/v1/agents/{agent['id']}/rotate-secret", headers=live_orgs.a.headers)).json()
    receiver.secrets.append(rotated["signing_secret"])
    row = await Agent.get(id=agent["id"])
    assert row.previous_signing_secret is not None and row.previous_signing_secret.startswith("enc:v1:")
    assert secret not in row.previous_signing_secret and rotated["signing_secret"] not in row.signing_secret
    # A ciphertext is bound to its agent: copied to another row it does not open.
    other = await webhook_agent(http, live_orgs.a.headers, receiver)
    await Agent.filter(id=other["id"]).update(signing_secret=row.signing_secret)

    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    await send(http, live_orgs.a.headers, conv["id"], "signed")
    await receiver.wait_for(lambda r: len(r.received) == 1)
    assert sorted(receiver.received[0].signed_with) == sorted([secret, rotated["signing_secret"]])

    conv2 = await conversation(http, live_orgs.a.headers, other["id"])
    await send(http, live_orgs.a.headers, conv2["id"], "cannot be signed")

    # The worker has tried all it can now: the attempt failed (to be retried) and sent nothing.
    (unsigned,) = [i for i in await drain_outbox() if i.agent_id == other["id"]]
    assert unsigned.status == "pending" and unsigned.attempts == 1
    assert "cannot be decrypted" in (unsigned.last_error or "")
    listed = (await http.get(f"/api/v1/deliveries?agent_id={other['id']}", headers=live_orgs.a.headers)).json()
    assert "cannot be decrypted" in listed["deliveries"][0]["last_error"]
    assert len(receiver.received) == 1  # never sent unsigned


async def test_plaintext_rows_keep_working_and_are_encrypted_at_start(settings: Settings, receiver: WebhookReceiver) -> None:
    legacy = "whsec_" + "L" * 40
    async with running_server(settings) as server:
        org = await make_org("Acme")
        async with httpx.AsyncClient(base_url=server.url) as http:
            agent = await webhook_agent(http, org.headers, receiver)
            await Agent.filter(id=agent["id"]).update(signing_secret=legacy)  # as stored before
            receiver.secrets = [legacy]
            conv = await conversation(http, org.headers, agent["id"])
            await send(http, org.headers, conv["id"], "legacy")
            await receiver.wait_for(lambda r: len(r.received) == 1)
            assert receiver.received[0].signed_with == [legacy]
    async with running_server(settings) as server:
        row = await Agent.get(id=agent["id"])
        assert row.signing_secret.startswith("enc:v1:")
        async with httpx.AsyncClient(base_url=server.url) as http:
            await send(http, org.headers, conv["id"], "after the upgrade")
            await receiver.wait_for(lambda r: len(r.received) == 2)
    assert receiver.received[1].signed_with == [legacy] and not receiver.invalid


def test_key_from_the_environment(tmp_path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    create_app(Settings(data_dir=tmp_path, secret_key=key), auto_migrate=False)
    assert not (tmp_path / "secret.key").exists()
    for bad in ("not base64 at all!", base64.b64encode(b"short").decode()):
        with pytest.raises(CryptoError):
            create_app(Settings(data_dir=tmp_path, secret_key=bad), auto_migrate=False)
    assert "secret_key" not in repr(Settings(secret_key=key)) and key not in repr(Settings(secret_key=key))


async def test_rotating_recovers_from_a_lost_key(settings: Settings, receiver: WebhookReceiver) -> None:
    """With the key file gone, stored secrets no longer open: rotating must still work (it is
    the way back), and the new secret then signs alone."""
    async with running_server(settings) as server:
        org = await make_org("Acme")
        async with httpx.AsyncClient(base_url=server.url) as http:
            agent = await webhook_agent(http, org.headers, receiver)
    (settings.data_dir / "secret.key").unlink()  # lost: the next start makes a new key
    async with running_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            rotated = await http.post(f"/api/v1/agents/{agent['id']}/rotate-secret", headers=org.headers)
            assert rotated.status_code == 200, rotated.text
            secret = rotated.json()["signing_secret"]
            receiver.secrets = [secret]
            conv = await conversation(http, org.headers, agent["id"])
            await send(http, org.headers, conv["id"], "after the new key")
            await receiver.wait_for(lambda r: len(r.received) == 1)
            assert receiver.received[0].signed_with == [secret]


def test_the_key_file_is_written_whole_and_shared(tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.kernel.crypto import load_key

    settings = Settings(data_dir=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_key(settings), range(8)))
    assert len(keys) == 1 and len(next(iter(keys))) == 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temporary files left
