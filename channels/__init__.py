"""Ways out of the machine: one adapter per channel, found by name.

The outbox worker builds every registered channel at start (``build``) and hands each
claimed item to the adapter named by its ``channel``. A factory returns ``None`` when its
channel is not configured (no SMTP server, say): items for it wait and are retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .base import Channel

if TYPE_CHECKING:
    from app.kernel.config import Settings

__all__ = ["register", "build", "names", "apns_settings"]

Factory = Callable[["Settings"], "Channel | None"]
_factories: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    _factories[name] = factory


def names() -> list[str]:
    return sorted(_factories)


def build(settings: "Settings") -> dict[str, Channel]:
    built = {name: factory(settings) for name, factory in _factories.items()}
    return {name: channel for name, channel in built.items() if channel is not None}


def _webhook(settings: "Settings") -> Channel:
    from .webhook import WebhookChannel

    return WebhookChannel(
        timeout=settings.webhook_timeout_seconds,
        allow_private=settings.allow_private_webhooks,
        max_connections=settings.outbox_concurrency,
    )


def _email(settings: "Settings") -> Channel | None:
    if not settings.smtp_url:
        return None
    from .email import EmailChannel, parse_smtp_url

    return EmailChannel(parse_smtp_url(settings.smtp_url, sender=settings.mail_from), timeout=settings.smtp_timeout_seconds)


def apns_settings(settings: "Settings") -> dict[str, Any]:
    """The APNs channel's arguments from the settings; ``ValueError`` says what is wrong."""
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from .apns import APPLE_HOSTS, ApnsHost

    try:
        key = Path(settings.apns_key_file).read_text()
    except OSError as exc:
        raise ValueError(f"SWITCHBOARD_APNS_KEY_FILE cannot be read: {exc}") from exc
    try:
        parsed = load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("SWITCHBOARD_APNS_KEY_FILE is not a .p8 private key (PEM)") from exc
    if not isinstance(parsed, ec.EllipticCurvePrivateKey):
        raise ValueError("SWITCHBOARD_APNS_KEY_FILE must hold an EC (P-256) key, as Apple issues them")
    production = settings.apns_url or APPLE_HOSTS["production"]
    sandbox = settings.apns_sandbox_url or settings.apns_url or APPLE_HOSTS["sandbox"]
    return {
        "key": key,
        "key_id": settings.apns_key_id,
        "team_id": settings.apns_team_id,
        "topic": settings.apns_topic,
        "hosts": {"production": ApnsHost.parse(production), "sandbox": ApnsHost.parse(sandbox)},
        "ca_file": settings.apns_ca_file or None,
        "timeout": settings.apns_timeout_seconds,
    }


def _apns(settings: "Settings") -> Channel | None:
    if not settings.apns_configured:
        return None
    from .apns import ApnsChannel

    return ApnsChannel(**apns_settings(settings))


def _webpush(settings: "Settings") -> Channel:
    from app.kernel import vapid

    from .webpush import WebPushChannel

    key = vapid.load(settings)
    return WebPushChannel(
        private_key=key.private_key,
        subject=key.subject,
        timeout=settings.webpush_timeout_seconds,
        allow_private=settings.allow_private_webhooks,
        max_connections=settings.outbox_concurrency,
    )


register("webhook", _webhook)
register("callback", _webhook)  # interactive-message answers: signed POSTs like webhooks
register("email", _email)
register("apns", _apns)
register("webpush", _webpush)
