"""The outbox is one queue for every channel: one writer, a registry of adapters, and the
same leases, retries, ordering, holds and listeners whatever the channel. A queued delivery
written before the outbox became generic survives the upgrade and goes out."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlparse, urlunparse

import pytest
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

import channels
from app import outbox
from app.kernel.config import Settings
from app.kernel.db import migrate, tortoise_config
from app.models.chat import DeliveryAttempt, OutboxItem
from app.models.core import Organization
from app.serving.asgi import build
from app.services import api_keys
from channels.base import Channel, DeliveryResult, Outbound
from channels.email import EmailChannel
from channels.webhook import WebhookChannel
from tests.conftest import _state as conftest_state
from tests.conftest import make_org, wait_for
from tests.fakes.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent


class Probe(Channel):
    """An adapter that answers from a script and remembers what it was handed."""

    timeout = 1.0

    def __init__(self) -> None:
        self.script: dict[str, list[DeliveryResult]] = {}
        self.sent: list[Outbound] = []
        self.arrived = asyncio.Event()

    async def deliver(self, outbound: Outbound) -> DeliveryResult:
        self.sent.append(outbound)
        self.arrived.set()
        answers = self.script.get(outbound.target) or [DeliveryResult("delivered")]
        return answers.pop(0) if len(answers) > 1 else answers[0]


HEARD: list[tuple[str, str, str]] = []


async def _heard_gone(item: dict[str, Any], result: DeliveryResult) -> None:
    HEARD.append(("gone", item["id"], result.outcome))


async def _heard_failed(item: dict[str, Any], result: DeliveryResult) -> None:
    HEARD.append(("failed", item["id"], result.outcome))


outbox.on_gone("probe", _heard_gone)
outbox.on_failed(_heard_failed)


@pytest.fixture
async def probe_app(settings: Settings) -> AsyncIterator[tuple[Any, Probe]]:
    _, app = build(settings, auto_migrate=False)
    async with app.test_app():
        probe = Probe()
        app.extensions["outbox"].channels["probe"] = probe
        yield app, probe


async def _queue(org_id: str, target: str, **extra: Any) -> str:
    return await outbox.enqueue(
        organization_id=org_id, channel=extra.pop("channel", "probe"), kind="test", event="test.event",
        target=target, payload={"to": target}, **extra,
    )


async def _settled(item_id: str, timeout: float = 10) -> OutboxItem:
    async def done() -> bool:
        return await OutboxItem.filter(id=item_id, status__in=("succeeded", "failed", "cancelled")).exists()

    await wait_for(done, timeout=timeout)
    return await OutboxItem.get(id=item_id)


async def test_the_registry_has_the_webhook_and_email_channels(settings: Settings) -> None:
    assert {"webhook", "email"} <= set(channels.names())
    plain = channels.build(settings)
    with_mail = channels.build(settings.with_overrides(smtp_url="smtp://mail.example:2525"))
    try:
        assert isinstance(plain["webhook"], WebhookChannel) and "email" not in plain  # no SMTP configured
        email = with_mail["email"]
        assert isinstance(email, EmailChannel) and email.config.port == 2525
    finally:
        for built in (plain, with_mail):
            for channel in built.values():
                await channel.close()


def test_one_function_writes_outbox_rows() -> None:
    writes = re.compile(r"INSERT INTO outbox\b|insert_sql\(\s*\"outbox\"|OutboxItem\.(create|bulk_create)\(")
    writers = sorted(
        str(path.relative_to(ROOT))
        for folder in ("app", "channels", "providers")
        for path in (ROOT / folder).rglob("*.py")
        if writes.search(path.read_text())
    )
    assert writers == ["app/outbox/writer.py"]


async def test_outcomes_are_recorded_the_same_for_any_channel(probe_app: tuple[Any, Probe]) -> None:
    app, probe = probe_app
    org = await make_org("Acme")
    probe.script = {
        "gone": [DeliveryResult("gone", status_code=410, error="unregistered")],
        "refused": [DeliveryResult("failed", status_code=400, error="bad request")],
        "flaky": [DeliveryResult("retry", error="busy", retry_after=0.05), DeliveryResult("delivered", status_code=200)],
    }
    async with app.app_context():
        gone, refused, flaky = [await _queue(org.id, t) for t in ("gone", "refused", "flaky")]
    g, r, f = await _settled(gone), await _settled(refused), await _settled(flaky)
    assert (g.status, r.status, f.status) == ("failed", "failed", "succeeded")
    log = {i: await DeliveryAttempt.filter(delivery_id=i).order_by("number").values_list("outcome", flat=True) for i in (gone, refused, flaky)}
    assert log == {gone: ["gone"], refused: ["failed"], flaky: ["retry", "succeeded"]}
    # Listeners: the owner of a gone target hears first, then every final failure is told.
    assert ("gone", gone, "gone") in HEARD and ("failed", gone, "gone") in HEARD and ("failed", refused, "failed") in HEARD
    assert not [h for h in HEARD if h[1] == flaky]


async def test_items_of_one_ordering_key_go_out_in_order(probe_app: tuple[Any, Probe]) -> None:
    app, probe = probe_app
    org = await make_org("Acme")
    probe.script = {"first": [DeliveryResult("retry", error="later", retry_after=0.05), DeliveryResult("delivered")]}
    async with app.app_context():
        ids = [await _queue(org.id, t, ordering_key="key-1", ordering_seq=n) for n, t in enumerate(["first", "second", "third"], 1)]
    for item_id in ids:
        await _settled(item_id)
    assert [o.target for o in probe.sent] == ["first", "first", "second", "third"]


async def test_held_items_wait_until_released(probe_app: tuple[Any, Probe]) -> None:
    app, probe = probe_app
    org = await make_org("Acme")
    async with app.app_context():
        await outbox.hold("test:paused")
        held = await _queue(org.id, "held", hold_key="test:paused")
        free = await _queue(org.id, "free")
    await _settled(free)  # queued after the held one, due later: the worker has passed it over
    item = await OutboxItem.get(id=held)
    assert (item.status, item.attempts) == ("pending", 0) and [o.target for o in probe.sent] == ["free"]
    async with app.app_context():
        await outbox.release("test:paused")
    assert (await _settled(held)).status == "succeeded"


async def test_a_channel_not_configured_here_is_retried(probe_app: tuple[Any, Probe]) -> None:
    app, _ = probe_app
    org = await make_org("Acme")
    async with app.app_context():
        item_id = await _queue(org.id, "sam@example.com", channel="email")

    async def attempted() -> bool:
        return await DeliveryAttempt.filter(delivery_id=item_id).exists()

    await wait_for(attempted)
    attempt = await DeliveryAttempt.get(delivery_id=item_id)
    assert attempt.outcome == "retry" and "channel 'email' is not configured" in (attempt.error or "")


async def test_manual_retry_and_delivery_log_work_for_any_channel(probe_app: tuple[Any, Probe]) -> None:
    app, probe = probe_app
    org = await make_org("Acme")
    probe.script = {"once": [DeliveryResult("failed", status_code=400, error="no"), DeliveryResult("delivered")]}
    async with app.app_context():
        item_id = await _queue(org.id, "once")
    assert (await _settled(item_id)).status == "failed"
    client = app.test_client()
    retried = await client.post(f"/api/v1/deliveries/{item_id}/retry", headers=org.headers)
    assert retried.status_code == 202
    assert (await _settled(item_id)).status == "succeeded"
    shown = (await (await client.get(f"/api/v1/deliveries/{item_id}", headers=org.headers)).get_json())["delivery"]
    assert shown["channel"] == "probe" and shown["target"] == "once" and shown["url"] is None
    assert [a["outcome"] for a in shown["attempt_log"]] == ["failed", "succeeded"]


# ---------------------------------------------------------------- upgrade with queued work

async def _old_database(url: str) -> None:
    """The schema as it was before the generic outbox (core and chat at 0001), with data."""
    from tortoise.migrations.api import migrate as migrate_api

    config = tortoise_config(url)
    for labels, target in ((["core"], "core.0001_initial"), (["core", "chat"], "chat.0001_initial"), (["core", "store"], "store")):
        await migrate_api(config=config, app_labels=labels, target=target)
        await Tortoise.close_connections()


async def _seed(url: str, hook: str) -> dict[str, str]:
    await Tortoise.init(config=tortoise_config(url))
    conn = connections.get("default")
    q = (lambda sql: sql) if url.startswith("sqlite") else (lambda sql: _dollars(sql))
    now = datetime.now(timezone.utc)
    ids = {"org": "org_old", "user": "usr_old", "on": "agt_on", "off": "agt_off", "conv_on": "conv_on", "conv_off": "conv_off"}
    try:
        await conn.execute_query(q("INSERT INTO organizations (id, name, plan, timezone, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"), ["org_old", "Old Co", "self-hosted", "UTC", now, now])
        await conn.execute_query(q("INSERT INTO users (id, email, email_key, name, created_at) VALUES (?, ?, ?, ?, ?)"), ["usr_old", "old@old.example", "old@old.example", "Old", now])
        await conn.execute_query(q("INSERT INTO memberships (organization_id, user_id, role, status, created_at) VALUES (?, ?, ?, ?, ?)"), ["org_old", "usr_old", "owner", "active", now])
        for agent, enabled in (("agt_on", True), ("agt_off", False)):
            await conn.execute_query(
                q("INSERT INTO agents (id, organization_id, name, protocol, webhook_url, test_mode, enabled, config, signing_secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                [agent, "org_old", agent, "webhook", hook, False, enabled, "{}", f"whsec_{agent}", now, now],
            )
            conv = "conv_" + agent[4:]
            await conn.execute_query(
                q("INSERT INTO conversations (id, organization_id, agent_id, user_id, title, status, last_seq, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                [conv, "org_old", agent, "usr_old", "", "active", 2, now, now],
            )
            for seq in (1, 2):
                body = f'{{"event":"message.created","conversationId":"{conv}","messageId":"msg_{agent}_{seq}","content":"queued {seq}"}}'
                await conn.execute_query(
                    q("INSERT INTO outbox (id, organization_id, kind, event, url, body, headers, secret_ref, ordering_key, ordering_seq, status, attempts, next_attempt_at, window_start, agent_id, conversation_id, message_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    [f"dlv_{agent}_{seq}", "org_old", "agent_webhook", "message.created", hook, body, "{}", f"agent:{agent}", conv, seq, "pending", 0, now, now, agent, conv, f"msg_{agent}_{seq}", now, now],
                )
    finally:
        await Tortoise.close_connections()
    return ids


def _dollars(sql: str) -> str:
    parts = sql.split("?")
    return "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    # tortoise caches SQL per connection name, not per dialect: forget it on either side.
    EXECUTOR_CACHE.clear()
    conftest_state.pop("backend", None)
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'old.db'}"
        return
    admin = os.environ.get("TEST_DATABASE_URL")
    if not admin:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    import asyncpg

    name = f"sb_upgrade_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin.replace("postgres://", "postgresql://", 1))
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(admin)._replace(path=f"/{name}"))
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_queued_deliveries_survive_the_upgrade(empty_url: str, tmp_path: Path) -> None:
    receiver = await WebhookReceiver(secrets=["whsec_agt_on", "whsec_agt_off"]).start()
    try:
        await _old_database(empty_url)
        await _seed(empty_url, receiver.url)
        settings = Settings(data_dir=tmp_path, database_url=empty_url, allow_private_webhooks=True)
        await migrate(settings)  # the upgrade, on a database holding queued deliveries
        _, app = build(settings, auto_migrate=False)
        async with app.test_app():
            await receiver.wait_for(lambda r: len(r.acknowledged) >= 2)
            items = {i.id: i for i in await OutboxItem.all()}
            assert {i.channel for i in items.values()} == {"webhook"}
            assert items["dlv_agt_on_1"].target == receiver.url
            # In order, signed with the agent's secret, bodies exactly as queued.
            assert [r.json["messageId"] for r in receiver.acknowledged] == ["msg_agt_on_1", "msg_agt_on_2"]
            assert all(r.signed_with == ["whsec_agt_on"] for r in receiver.acknowledged)
            # The disabled agent's deliveries stayed held through the upgrade ...
            assert (items["dlv_agt_off_1"].status, items["dlv_agt_off_1"].attempts) == ("pending", 0)
            # ... and go out when it is enabled again (the old organization gets a key for it).
            org = await Organization.get(id="org_old")
            key = await api_keys.create_key_record(org, name="upgrade", scopes=["agents:write"], user=None)
            enabled = await app.test_client().patch(
                "/api/v1/agents/agt_off", json={"enabled": True}, headers={"Authorization": f"Bearer {key}"}
            )
            assert enabled.status_code == 200, await enabled.get_data(as_text=True)
            await receiver.wait_for(lambda r: len(r.acknowledged) >= 4)
            assert [r.json["messageId"] for r in receiver.acknowledged[2:]] == ["msg_agt_off_1", "msg_agt_off_2"]
    finally:
        await receiver.stop()


async def test_a_queued_delivery_can_be_cancelled_by_hand(probe_app: tuple[Any, Probe]) -> None:
    app, probe = probe_app
    org = await make_org("Acme")
    async with app.app_context():
        await outbox.hold("test:cancel")
        item_id = await _queue(org.id, "never", hold_key="test:cancel")
    client = app.test_client()
    cancelled = await client.post(f"/api/v1/deliveries/{item_id}/cancel", headers=org.headers)
    assert cancelled.status_code == 200
    shown = (await cancelled.get_json())["delivery"]
    assert shown["status"] == "cancelled" and shown["last_error"].startswith("cancelled by API key")
    again = await client.post(f"/api/v1/deliveries/{item_id}/cancel", headers=org.headers)
    assert again.status_code == 409 and (await again.get_json())["error"]["code"] == "delivery_finished"
    retry = await client.post(f"/api/v1/deliveries/{item_id}/retry", headers=org.headers)
    assert retry.status_code == 409
    async with app.app_context():
        await outbox.release("test:cancel")
    other = await make_org("Globex")
    assert (await client.post(f"/api/v1/deliveries/{item_id}/cancel", headers=other.headers)).status_code == 404
    assert (await OutboxItem.get(id=item_id)).status == "cancelled" and probe.sent == []
