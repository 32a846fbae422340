"""Email through the outbox: the SMTP channel against a real SMTP server on loopback,
invitations that prove the invitee owns the mailbox, password reset."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from app.kernel.config import Settings
from app.models.chat import DeliveryAttempt, OutboxItem
from app.models.core import User
from app.serving.asgi import build
from channels.base import Outbound
from channels.email import EmailChannel, parse_smtp_url
from tests.conftest import Org, login, make_org, wait_for
from tests.fakes.smtp import SMTPServer, make_certificate

PUBLIC = "https://chat.example.com"


def _outbound(to: str = "sam@example.com", body: Any = None) -> Outbound:
    payload = body if body is not None else {"subject": "Hello", "text": "plain words", "html": "<p>html words</p>"}
    return Outbound("dlv_probe", "email", "email.test", to, json.dumps(payload).encode())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.mark.parametrize("mode", ["plain", "starttls", "tls"])
async def test_email_channel_sends_through_each_transport(mode: str, certificate: tuple[Path, Path]) -> None:
    server = await SMTPServer(mode=mode, credentials=("relay-user", "relay pass"), certificate=certificate).start()
    try:
        config = parse_smtp_url(server.url(), sender="gateway@example.com")
        config.tls_context = ssl.create_default_context(cafile=str(certificate[0]))
        result = await EmailChannel(config, timeout=5).deliver(_outbound())
        assert result.outcome == "delivered", result.error
        got = await server.next()
    finally:
        await server.stop()
    assert got.tls is (mode != "plain") and got.login == "relay-user"
    assert got.sender == "gateway@example.com" and got.recipients == ["sam@example.com"]
    assert got.message["Subject"] == "Hello" and "dlv_probe" in got.message["Message-ID"]
    assert got.part("plain").strip() == "plain words" and "<p>html words</p>" in got.part("html")


async def test_email_channel_outcomes(certificate: tuple[Path, Path]) -> None:
    later = await SMTPServer(rcpt_code=451).start()
    never = await SMTPServer(rcpt_code=550).start()
    try:
        retry = await EmailChannel(parse_smtp_url(later.url())).deliver(_outbound())
        final = await EmailChannel(parse_smtp_url(never.url())).deliver(_outbound())
        malformed = await EmailChannel(parse_smtp_url(later.url())).deliver(_outbound(body={"text": "no subject"}))
    finally:
        await later.stop()
        await never.stop()
    assert retry.outcome == "retry" and retry.status_code == 451
    assert final.outcome == "failed" and final.status_code == 550 and "550" in (final.error or "")
    assert malformed.outcome == "failed" and "invalid email body" in (malformed.error or "")
    down = await EmailChannel(parse_smtp_url(f"smtp://127.0.0.1:{later.port}"), timeout=2).deliver(_outbound())
    assert down.outcome == "retry" and down.error and down.error.startswith("connection error")


def test_smtp_url_parsing() -> None:
    c = parse_smtp_url("smtps://me%40corp:p%2Fss@mail.corp.example")
    assert (c.host, c.port, c.implicit_tls, c.username, c.password) == ("mail.corp.example", 465, True, "me@corp", "p/ss")
    assert parse_smtp_url("smtp://mail.corp.example").port == 587
    assert parse_smtp_url("smtp://mail.corp.example").sender == "switchboard@mail.corp.example"
    with pytest.raises(ValueError):
        parse_smtp_url("http://mail.corp.example")


# ---------------------------------------------------------------- through the gateway


@pytest.fixture
async def smtp() -> AsyncIterator[SMTPServer]:
    server = await SMTPServer().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def mail_app(settings: Settings, smtp: SMTPServer) -> AsyncIterator[Any]:
    """The gateway with email on (and its outbox worker running)."""
    _, app = build(settings.with_overrides(smtp_url=smtp.url(), public_url=PUBLIC, mail_from="gw@example.com"), auto_migrate=False)
    async with app.test_app():
        yield app


def _token(text: str, prefix: str) -> str:
    found = re.search(rf"\b{prefix}_[A-Za-z0-9_-]+", text)
    assert found, text
    return found.group(0)


async def test_invitation_is_emailed_and_never_returned(mail_app: Any, smtp: SMTPServer) -> None:
    client = mail_app.test_client()
    org = await make_org("Acme")
    response = await client.post("/api/v1/organization/members", json={"email": "Sam@Corp.example"}, headers=org.headers)
    assert response.status_code == 201
    body = await response.get_json()
    assert "invite_token" not in body and body["invite_emailed"] is True
    assert body["member"]["id"].startswith("mbr_") and body["member"]["status"] == "pending"

    mail = await smtp.next()
    assert mail.recipients == ["Sam@Corp.example"] and "Acme" in mail.message["Subject"]
    token = _token(mail.part("plain"), "inv")
    assert f"{PUBLIC}/accept-invite?token={token}" in mail.part("plain")
    assert f'href="{PUBLIC}/accept-invite?token={token}"' in mail.part("html")

    # The outbox holds the body sealed, and the delivery log shows it to nobody.
    item = await settled(await OutboxItem.get(channel="email"))
    assert token not in item.body and item.status == "succeeded" and item.kind == "invitation"
    log = await (await client.get(f"/api/v1/deliveries/{item.id}", headers=org.headers)).get_json()
    assert log["delivery"]["channel"] == "email" and log["delivery"]["body"] is None
    assert [a["outcome"] for a in log["delivery"]["attempt_log"]] == ["succeeded"]

    accepted = await client.post("/api/v1/auth/accept-invite", json={"token": token, "password": "sams own password"})
    assert accepted.status_code == 200
    members = (await (await client.get("/api/v1/organization/members", headers=org.headers)).get_json())["members"]
    sam = next(m for m in members if m["email"] == "Sam@Corp.example")
    assert sam["status"] == "active" and sam["id"] == (await User.get(email_key="sam@corp.example")).id


async def test_invite_never_reveals_an_account_elsewhere(mail_app: Any, smtp: SMTPServer) -> None:
    client = mail_app.test_client()
    a, b = await make_org("Acme"), await make_org("Globex")
    known = await client.post("/api/v1/organization/members", json={"email": a.owner_email}, headers=b.headers)
    unknown = await client.post("/api/v1/organization/members", json={"email": "nobody@new.example"}, headers=b.headers)
    assert known.status_code == unknown.status_code == 201
    k, u = await known.get_json(), await unknown.get_json()
    assert set(k) == set(u) and set(k["member"]) == set(u["member"])
    assert k["member"]["id"].startswith("mbr_") and k["member"]["id"] != a.owner_id
    assert k["member"]["name"] == u["member"]["name"] == ""
    listed = (await (await client.get("/api/v1/organization/members", headers=b.headers)).get_json())["members"]
    assert a.owner_id not in {m["id"] for m in listed}
    # The pending invitation is removed by its membership id.
    removed = await client.delete(f"/api/v1/organization/members/{k['member']['id']}", headers=b.headers)
    assert removed.status_code == 200
    other = await client.delete(f"/api/v1/organization/members/{u['member']['id']}", headers=a.headers)
    assert other.status_code == 404


async def test_takeover_recovered_by_password_reset(settings: Settings, smtp: SMTPServer) -> None:
    # Without email, organization B is handed the token and claims the address first.
    _, plain = build(settings, auto_migrate=False)
    async with plain.test_app():
        client = plain.test_client()
        b = await make_org("Globex")
        invited = await (
            await client.post("/api/v1/organization/members", json={"email": "pat@corp.example"}, headers=b.headers)
        ).get_json()
        assert invited["invite_emailed"] is False
        squatter = await client.post(
            "/api/v1/auth/accept-invite", json={"token": invited["invite_token"], "password": "chosen by globex"}
        )
        squatter_session = (await squatter.get_json())["token"]
    # With email, the address's owner proves the mailbox and takes the account back.
    _, app = build(settings.with_overrides(smtp_url=smtp.url(), public_url=PUBLIC), auto_migrate=False)
    async with app.test_app():
        client = app.test_client()
        asked = await client.post("/api/v1/auth/password-reset", json={"email": "PAT@corp.example"})
        assert asked.status_code == 202
        mail = await smtp.next()
        assert mail.recipients == ["pat@corp.example"]
        token = _token(mail.part("plain"), "prt")
        assert f"{PUBLIC}/reset-password?token={token}" in mail.part("plain")
        done = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "pats real password"})
        assert done.status_code == 200
        # Every session of the account ends; the old password no longer works, the new one does.
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {squatter_session}"})
        assert me.status_code == 401
        old = await client.post("/api/v1/auth/login", json={"email": "pat@corp.example", "password": "chosen by globex"})
        assert old.status_code == 401
        assert await login(client, "pat@corp.example", "pats real password")
        again = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "third password"})
        assert again.status_code == 401 and (await again.get_json())["error"]["code"] == "invalid_reset_token"


async def test_password_reset_answers_the_same_for_unknown_addresses(mail_app: Any, smtp: SMTPServer, org_owner: Org) -> None:
    client = mail_app.test_client()
    unknown = await client.post("/api/v1/auth/password-reset", json={"email": "ghost@nowhere.example"})
    known = await client.post("/api/v1/auth/password-reset", json={"email": org_owner.owner_email})
    assert unknown.status_code == known.status_code == 202
    assert await unknown.get_json() == await known.get_json()
    mail = await smtp.next()
    assert mail.recipients == [org_owner.owner_email]
    # Only the known address was written to the outbox, and it is delivered: nothing else went out.
    await settled(await OutboxItem.get(channel="email"))
    items = await OutboxItem.filter(channel="email").values_list("target", "status")
    assert items == [(org_owner.owner_email, "succeeded")] and smtp.received == [mail]


@pytest.fixture
async def org_owner(mail_app: Any) -> Org:
    return await make_org("Acme")


async def test_password_reset_input_errors(mail_app: Any, org_owner: Org) -> None:
    client = mail_app.test_client()
    bad = await client.post("/api/v1/auth/password-reset", json={"email": "not an address"})
    assert bad.status_code == 422 and "email" in (await bad.get_json())["error"]["details"]
    unknown_token = await client.post("/api/v1/auth/password-reset/confirm", json={"token": "prt_nope", "password": "long enough"})
    assert unknown_token.status_code == 401
    short = await client.post("/api/v1/auth/password-reset/confirm", json={"token": "prt_nope", "password": "short"})
    assert short.status_code == 422 and "password" in (await short.get_json())["error"]["details"]


async def test_password_reset_without_email_says_so(client: Any, orgs: Any) -> None:
    response = await client.post("/api/v1/auth/password-reset", json={"email": orgs.a.owner_email})
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "email_not_configured"


async def test_email_retried_until_the_server_takes_it(mail_app: Any, smtp: SMTPServer, org_owner: Org) -> None:
    smtp.rcpt_code = 451  # greylisting: try again later
    client = mail_app.test_client()
    await client.post("/api/v1/organization/members", json={"email": "lee@corp.example"}, headers=org_owner.headers)
    item = await OutboxItem.get(channel="email")
    await wait_for(lambda: smtp.rcpt_attempts >= 1)
    smtp.rcpt_code = None
    mail = await smtp.next(timeout=10)
    assert mail.recipients == ["lee@corp.example"]
    await settled(item)
    outcomes = await DeliveryAttempt.filter(delivery_id=item.id).order_by("number").values_list("outcome", flat=True)
    assert outcomes[-1] == "succeeded" and "retry" in outcomes


async def settled(item: OutboxItem) -> OutboxItem:
    """The item once the worker has recorded its last attempt."""

    async def final() -> bool:
        await item.refresh_from_db()
        return item.status in ("succeeded", "failed", "cancelled")

    await wait_for(final, timeout=15)
    return item


def test_starttls_is_required_except_on_loopback_or_when_made_optional() -> None:
    assert parse_smtp_url("smtp://user:pw@mail.corp.example").starttls_required
    assert not parse_smtp_url("smtp://user:pw@mail.corp.example?starttls=optional").starttls_required
    assert not parse_smtp_url("smtp://127.0.0.1:2525").starttls_required
    assert not parse_smtp_url("smtps://mail.corp.example").starttls_required  # TLS from the first byte


async def test_no_password_or_token_in_clear_when_starttls_is_missing(certificate: tuple[Path, Path]) -> None:
    server = await SMTPServer(mode="plain", credentials=("relay-user", "relay pass")).start()
    try:
        config = parse_smtp_url(server.url())
        config.starttls_required = True  # as for any relay that is not on loopback
        result = await EmailChannel(config, timeout=5).deliver(_outbound())
    finally:
        await server.stop()
    assert result.outcome == "retry" and server.received == [] and server.rcpt_attempts == 0


async def test_a_refused_login_is_retried_not_final() -> None:
    server = await SMTPServer(mode="plain", credentials=("relay-user", "relay pass")).start()
    try:
        wrong = parse_smtp_url(f"smtp://relay-user:wrong@127.0.0.1:{server.port}")
        result = await EmailChannel(wrong, timeout=5).deliver(_outbound())
    finally:
        await server.stop()
    assert result.outcome == "retry" and result.status_code == 535


async def test_invitation_deliveries_are_for_those_who_see_members(mail_app: Any, smtp: SMTPServer, org_owner: Org) -> None:
    from app.models.core import Organization
    from app.services import api_keys

    client = mail_app.test_client()
    await client.post("/api/v1/organization/members", json={"email": "secret-hire@corp.example"}, headers=org_owner.headers)
    item = await settled(await OutboxItem.get(channel="email"))
    org = await Organization.get(id=org_owner.id)
    agents_only = await api_keys.create_key_record(org, name="agents", scopes=["agents:read", "agents:write"], user=None)
    headers = {"Authorization": f"Bearer {agents_only}"}
    listed = (await (await client.get("/api/v1/deliveries", headers=headers)).get_json())["deliveries"]
    assert item.id not in {d["id"] for d in listed}
    assert (await client.get(f"/api/v1/deliveries/{item.id}", headers=headers)).status_code == 403
    assert (await client.post(f"/api/v1/deliveries/{item.id}/cancel", headers=headers)).status_code == 403
    owner = (await (await client.get("/api/v1/deliveries", headers=org_owner.headers)).get_json())["deliveries"]
    assert item.id in {d["id"] for d in owner}


async def test_a_pending_invite_shows_the_address_as_written(mail_app: Any, smtp: SMTPServer) -> None:
    client = mail_app.test_client()
    a, b = await make_org("Acme"), await make_org("Globex")
    shouted = a.owner_email.upper()
    invited = await (await client.post("/api/v1/organization/members", json={"email": shouted}, headers=b.headers)).get_json()
    assert invited["member"]["email"] == shouted
    assert (await smtp.next()).recipients == [shouted]


async def test_reset_requests_past_the_limit_get_the_same_answer_and_send_nothing(mail_app: Any, smtp: SMTPServer, org_owner: Org) -> None:
    from app.models.core import PasswordReset

    client = mail_app.test_client()
    answers = [await client.post("/api/v1/auth/password-reset", json={"email": org_owner.owner_email}) for _ in range(7)]
    assert {a.status_code for a in answers} == {202}
    assert len({str(await a.get_json()) for a in answers}) == 1
    for _ in range(5):
        await smtp.next()

    async def five_sent() -> bool:
        return await OutboxItem.filter(channel="email", status="succeeded").count() == 5

    await wait_for(five_sent)
    assert await PasswordReset.all().count() == 5 and len(smtp.received) == 5
