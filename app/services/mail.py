"""Email to people: invitations and password resets, sent through the outbox's ``email``
channel (retries and the delivery log as for every channel).

Email is on when ``SWITCHBOARD_SMTP_URL`` is set. Links are built from
``SWITCHBOARD_PUBLIC_URL`` (else the listen address). Bodies carry one-time tokens, so they
are stored sealed (encrypted) in the outbox and never shown in the delivery log.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from urllib.parse import quote

from channels.email import parse_smtp_url

from .. import outbox
from ..kernel.config import Settings

__all__ = ["configure", "enabled", "send_invitation", "send_password_reset"]


@dataclass(frozen=True)
class _Mail:
    enabled: bool
    base_url: str


log = logging.getLogger("switchboard.mail")

_mail = _Mail(enabled=False, base_url="http://127.0.0.1:8000")


def configure(settings: Settings) -> None:
    """Read the email settings; ``ValueError`` says what is wrong with SWITCHBOARD_SMTP_URL."""
    global _mail
    if settings.smtp_url:
        parse_smtp_url(settings.smtp_url)
        if not settings.public_url:
            log.warning(
                "SWITCHBOARD_SMTP_URL is set but SWITCHBOARD_PUBLIC_URL is not: emailed links point at %s:%s",
                settings.host, settings.port,
            )
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    _mail = _Mail(enabled=bool(settings.smtp_url), base_url=base.rstrip("/"))


def enabled() -> bool:
    return _mail.enabled


def _link(path: str, token: str) -> str:
    return f"{_mail.base_url}{path}?token={quote(token)}"


def _html(paragraphs: list[str], link: str, action: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    href = html.escape(link, quote=True)
    return f'<!doctype html><html><body>{body}<p><a href="{href}">{html.escape(action)}</a></p></body></html>'


async def _send(*, organization_id: str, kind: str, to: str, subject: str, text: str, html_body: str) -> str:
    return await outbox.enqueue(
        organization_id=organization_id,
        channel="email",
        kind=kind,
        event=f"email.{kind}",
        target=to,
        payload={"subject": subject, "text": text, "html": html_body},
        sealed=True,
    )


def _duration(seconds: int) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        n, unit = seconds // 86400, "day"
    elif seconds >= 3600:
        n, unit = round(seconds / 3600), "hour"
    else:
        n, unit = max(1, round(seconds / 60)), "minute"
    return f"{n} {unit}{'' if n == 1 else 's'}"


async def send_invitation(
    *, organization_id: str, organization_name: str, inviter: str | None, to: str, token: str, valid_for: int
) -> str:
    link = _link("/accept-invite", token)
    who = f"{inviter} invited you" if inviter else "You are invited"
    lines = [
        f"{who} to join {organization_name} on Switchboard.",
        f"The invitation is valid for {_duration(valid_for)}. Accept it here:",
    ]
    text = "\n\n".join(lines) + f"\n\n{link}\n\nInvitation token: {token}\n"
    return await _send(
        organization_id=organization_id,
        kind="invitation",
        to=to,
        subject=f"Join {organization_name} on Switchboard",
        text=text,
        html_body=_html(lines, link, "Accept the invitation"),
    )


async def send_password_reset(*, to: str, token: str, valid_for: int) -> str:
    link = _link("/reset-password", token)
    lines = [
        "Someone asked to reset the password of your Switchboard account.",
        f"If it was you, choose a new password within {_duration(valid_for)}; otherwise ignore this message.",
    ]
    text = "\n\n".join(lines) + f"\n\n{link}\n\nReset token: {token}\n"
    # Not an organization's delivery: an account can belong to several, and none of them
    # may read a reset token.
    return await _send(
        organization_id="",
        kind="password_reset",
        to=to,
        subject="Reset your Switchboard password",
        text=text,
        html_body=_html(lines, link, "Choose a new password"),
    )
