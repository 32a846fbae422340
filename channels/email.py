"""The ``email`` channel: one message per delivery through an SMTP relay (aiosmtplib).

The outbox item's target is the recipient's address and its body is JSON
``{"subject", "text", "html"}``; the message is multipart/alternative and carries the
delivery id in ``X-Switchboard-Delivery`` (the same on every retry).

``smtps://user:pass@host:465`` speaks TLS from the first byte; ``smtp://user:pass@host:587``
must upgrade with STARTTLS (an attempt against a server that does not offer it fails and is
retried: the password and the one-time tokens never cross the network in clear), except on
a loopback host or with ``?starttls=optional``, where it upgrades when offered. A 4xx
answer, a timeout, a lost connection or a refused login is retried; a 5xx refusal of the
recipient or of the message itself is final.
"""

from __future__ import annotations

import json
import ssl
import time
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from .base import Channel, DeliveryResult, Outbound

__all__ = ["EmailChannel", "SMTPConfig", "parse_smtp_url"]


class SMTPConfig:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None,
        password: str | None,
        implicit_tls: bool,
        sender: str,
        starttls_required: bool = True,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.implicit_tls = implicit_tls
        self.starttls_required = starttls_required
        self.sender = sender
        self.tls_context = tls_context


def parse_smtp_url(url: str, *, sender: str = "") -> SMTPConfig:
    """``smtp[s]://[user[:password]@]host[:port][?starttls=optional]``; ``ValueError`` names
    what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("SWITCHBOARD_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("SWITCHBOARD_SMTP_URL must name a host")
    implicit = parts.scheme == "smtps"
    port = parts.port or (465 if implicit else 587)
    optional = parse_qs(parts.query).get("starttls") == ["optional"]
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    return SMTPConfig(
        parts.hostname,
        port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        sender=sender or f"switchboard@{parts.hostname}",
        starttls_required=not (implicit or optional or loopback),
    )


class EmailChannel(Channel):
    def __init__(self, config: SMTPConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout

    def _message(self, outbound: Outbound) -> EmailMessage:
        content = json.loads(outbound.body)
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = outbound.target
        message["Subject"] = " ".join(str(content["subject"]).split())  # no line breaks in a header
        domain = self.config.sender.rpartition("@")[2] or "switchboard.invalid"
        message["Message-ID"] = make_msgid(idstring=outbound.delivery_id, domain=domain)
        message["X-Switchboard-Delivery"] = outbound.delivery_id
        message.set_content(content["text"])
        if content.get("html"):
            message.add_alternative(content["html"], subtype="html")
        return message

    async def deliver(self, outbound: Outbound) -> DeliveryResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            message = self._message(outbound)
        except (ValueError, KeyError, TypeError) as exc:  # a malformed body never gets better
            return DeliveryResult("failed", elapsed(), error=f"invalid email body: {exc}")
        c = self.config
        try:
            await aiosmtplib.send(
                message,
                sender=c.sender,
                recipients=[outbound.target],
                hostname=c.host,
                port=c.port,
                username=c.username,
                password=c.password,
                use_tls=c.implicit_tls,
                # True: STARTTLS or no send. None: upgrade when the server offers it.
                start_tls=False if c.implicit_tls else (True if c.starttls_required else None),
                tls_context=c.tls_context,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused is not None else None
            return _answer(code, str(refused or exc), elapsed(), final_5xx=True)
        except (aiosmtplib.SMTPDataError, aiosmtplib.SMTPSenderRefused) as exc:
            return _answer(exc.code, exc.message, elapsed(), final_5xx=True)
        except aiosmtplib.SMTPResponseException as exc:
            # A refused login, STARTTLS demanded ...: the relay's setup, which can be fixed.
            return _answer(exc.code, exc.message, elapsed(), final_5xx=False)
        except aiosmtplib.SMTPTimeoutError:
            return DeliveryResult("retry", elapsed(), error="timeout: the SMTP server did not answer in time")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return DeliveryResult("retry", elapsed(), error=f"connection error: {exc or type(exc).__name__}")
        return DeliveryResult("delivered", elapsed(), status_code=250)


def _answer(code: int | None, text: str, latency_ms: int, *, final_5xx: bool) -> DeliveryResult:
    error = f"SMTP {code}: {text}"[:300] if code else f"SMTP error: {text}"[:300]
    if final_5xx and code is not None and 500 <= code < 600:
        return DeliveryResult("failed", latency_ms, status_code=code, error=error)
    return DeliveryResult("retry", latency_ms, status_code=code, error=error)
