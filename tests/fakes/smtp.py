"""A real SMTP server on loopback (aiosmtpd) that keeps what arrives.

It speaks plain SMTP, STARTTLS or implicit TLS (with a throwaway certificate for
127.0.0.1), can require AUTH, and can answer RCPT with a scripted code, so the email
channel's retry and failure paths are met by a real server.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["SMTPServer", "Received", "make_certificate"]


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str | None

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@dataclass
class SMTPServer:
    """``mode``: "plain", "starttls" (offered and required) or "tls" (implicit)."""

    mode: str = "plain"
    credentials: tuple[str, str] | None = None
    certificate: tuple[Path, Path] | None = None
    rcpt_code: int | None = None  # answer every RCPT with this code (e.g. 451, 550)
    received: list[Received] = field(default_factory=list)
    rcpt_attempts: int = 0
    port: int = 0

    async def start(self) -> "SMTPServer":
        self._loop = asyncio.get_running_loop()
        self._arrived: asyncio.Queue[Received] = asyncio.Queue()
        kwargs: dict[str, Any] = {}
        server_ctx = None
        if self.mode != "plain":
            assert self.certificate is not None, "TLS modes need a certificate"
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(*map(str, self.certificate))
        if self.mode == "starttls":
            kwargs.update(tls_context=server_ctx, require_starttls=True)
        if self.credentials is not None:
            # Implicit TLS wraps the socket below aiosmtpd, which then cannot tell: only
            # STARTTLS is checked by it.
            kwargs.update(auth_required=True, auth_require_tls=self.mode == "starttls", authenticator=self._authenticate)
        self.port = self.port or _free_port()
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=server_ctx if self.mode == "tls" else None,
            ready_timeout=5,
            **kwargs,
        )
        await asyncio.to_thread(self._controller.start)
        return self

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.credentials
        return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)

    def url(self) -> str:
        scheme = "smtps" if self.mode == "tls" else "smtp"
        auth = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    def arrived(self, item: Received) -> None:
        self.received.append(item)
        self._loop.call_soon_threadsafe(self._arrived.put_nowait, item)

    async def next(self, timeout: float = 5.0) -> Received:
        """The next message to arrive (waits for it)."""
        return await asyncio.wait_for(self._arrived.get(), timeout)

    async def stop(self) -> None:
        await asyncio.to_thread(self._controller.stop)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        self.server.rcpt_attempts += 1
        code = self.server.rcpt_code
        if code is not None:
            return f"{code} {'mailbox unavailable' if code >= 500 else 'try again later'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        login = session.auth_data if session.authenticated else None
        self.server.arrived(
            Received(
                sender=envelope.mail_from,
                recipients=list(envelope.rcpt_tos),
                message=message,  # type: ignore[arg-type]
                tls=session.ssl is not None or self.server.mode == "tls",
                login=login,
            )
        )
        return "250 Message accepted"
