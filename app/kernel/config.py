"""Settings: read once from the environment, with casts and working defaults.

Nothing else in the project reads ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

__all__ = ["Settings", "load_settings"]


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file under data_dir
    redis_url: str = ""  # empty: in-process socket.io manager
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # base URL shown in connection info; derived from the request when empty
    max_body_bytes: int = 1024 * 1024
    session_ttl_seconds: int = 30 * 24 * 3600
    invite_ttl_seconds: int = 7 * 24 * 3600
    plans_file: str = ""  # empty: the bundled app/plans.json
    default_plan: str = "self-hosted"
    allow_private_webhooks: bool = False
    webhook_timeout_seconds: float = 5.0
    webhook_max_age_seconds: int = 24 * 3600
    outbox_concurrency: int = 64
    log_level: str = "INFO"
    login_attempts_per_minute: int = 10  # per client address and email
    auth_requests_per_minute: int = 60  # login + accept-invite, per client address
    # Each API key's and person's requests per minute; None: by plan (plans.json), 0: no limit.
    rate_limit_per_minute: int | None = None
    trusted_proxies: tuple[str, ...] = ()  # reverse proxies whose X-Forwarded-For is believed
    bootstrap_org: str = "My Organization"
    bootstrap_email: str = "admin@localhost"
    # base64 of 32 bytes; empty: <data_dir>/secret.key, generated once. Kept out of repr().
    secret_key: str = field(default="", repr=False)
    uvloop: bool = True  # serve on uvloop when it is installed
    # smtp://user:pass@host:587 (STARTTLS when offered) or smtps://...:465 (implicit TLS);
    # empty: no email (invitation tokens go back to the inviting admin). Kept out of repr().
    smtp_url: str = field(default="", repr=False)
    mail_from: str = ""  # empty: switchboard@<SMTP host>
    smtp_timeout_seconds: float = 10.0
    password_reset_ttl_seconds: int = 3600
    # APNs token auth (a .p8 key from Apple); all four set or the APNs channel is off.
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""  # the app's bundle id, for devices that registered without one
    apns_url: str = ""  # empty: Apple's hosts (production and sandbox by device)
    apns_sandbox_url: str = ""  # empty: apns_url when that is set, else Apple's sandbox host
    apns_ca_file: str = ""  # trust this CA for the APNs host (a relay or a test server)
    apns_timeout_seconds: float = 10.0
    # Web Push (VAPID, RFC 8292): PEM or base64url of the raw P-256 key; empty: generated once
    # into <data_dir>/vapid.pem. Kept out of repr().
    vapid_private_key: str = field(default="", repr=False)
    vapid_subject: str = ""  # empty: mailto:<bootstrap email>
    webpush_timeout_seconds: float = 10.0
    push_ttl_seconds: int = 24 * 3600  # how long APNs / a push service keeps an undelivered push
    push_send_wait_seconds: float = 3.0  # a single send answers after its first attempt, or this
    action_token_ttl_seconds: int = 3600  # approve-from-notification tokens
    live_activity_attributes_type: str = "WorkflowActivityAttributes"
    # Gateway-wide LLM provider keys (ANTHROPIC_API_KEY, OPENAI_API_KEY ...): used by custom
    # agents that name no credential of their own. Kept out of repr().
    provider_keys: dict[str, str] = field(default_factory=dict, repr=False)
    agent_max_tool_rounds: int = 8  # model -> tools -> model rounds per reply
    agent_tool_timeout_seconds: float = 30.0  # one MCP call (and connecting to a server)
    agent_approval_timeout_seconds: int = 600  # how long a tool waits for a person's approval
    agent_history_messages: int = 50  # what a custom agent's model sees of the conversation
    agent_history_tokens: int = 12_000  # ... at most, approximately (four characters a token)
    # Files: local disk under <data_dir>/files unless an S3 bucket is named (credentials from
    # the standard AWS variables).
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    file_max_bytes: int = 100 * 1024 * 1024
    file_types: tuple[str, ...] = ()  # allowed content types (``image/*`` patterns); empty: any
    upload_ttl_seconds: int = 3600  # how long an upload URL and its token stay valid
    file_retention_seconds: int = 30 * 24 * 3600  # a deleted file's object is removed after this

    @property
    def apns_configured(self) -> bool:
        return bool(self.apns_key_file and self.apns_key_id and self.apns_team_id)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite://{(self.data_dir / 'switchboard.db').resolve()}"

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]


# provider -> the environment variable of its default API key (see providers/).
_PROVIDER_KEYS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "google": "GOOGLE_API_KEY",
    "xai": "XAI_API_KEY",
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    get = env.get
    return Settings(
        data_dir=Path(get("SWITCHBOARD_DATA_DIR", "data")),
        database_url=get("DATABASE_URL", ""),
        redis_url=get("REDIS_URL", ""),
        host=get("SWITCHBOARD_HOST", "127.0.0.1"),
        port=int(get("SWITCHBOARD_PORT", "8000")),
        public_url=get("SWITCHBOARD_PUBLIC_URL", "").rstrip("/"),
        max_body_bytes=int(get("SWITCHBOARD_MAX_BODY_BYTES", str(1024 * 1024))),
        session_ttl_seconds=int(get("SWITCHBOARD_SESSION_TTL", str(30 * 24 * 3600))),
        invite_ttl_seconds=int(get("SWITCHBOARD_INVITE_TTL", str(7 * 24 * 3600))),
        plans_file=get("SWITCHBOARD_PLANS_FILE", ""),
        default_plan=get("SWITCHBOARD_DEFAULT_PLAN", "self-hosted"),
        allow_private_webhooks=_bool(get("SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS", "0")),
        webhook_timeout_seconds=float(get("SWITCHBOARD_WEBHOOK_TIMEOUT", "5")),
        webhook_max_age_seconds=int(get("SWITCHBOARD_WEBHOOK_MAX_AGE", str(24 * 3600))),
        outbox_concurrency=int(get("SWITCHBOARD_OUTBOX_CONCURRENCY", "64")),
        log_level=get("SWITCHBOARD_LOG_LEVEL", "INFO").upper(),
        login_attempts_per_minute=int(get("SWITCHBOARD_LOGIN_ATTEMPTS_PER_MINUTE", "10")),
        auth_requests_per_minute=int(get("SWITCHBOARD_AUTH_REQUESTS_PER_MINUTE", "60")),
        rate_limit_per_minute=int(v) if (v := get("SWITCHBOARD_RATE_LIMIT_PER_MINUTE", "").strip()) else None,
        trusted_proxies=tuple(p.strip() for p in get("SWITCHBOARD_TRUSTED_PROXIES", "").split(",") if p.strip()),
        bootstrap_org=get("SWITCHBOARD_BOOTSTRAP_ORG", "My Organization"),
        bootstrap_email=get("SWITCHBOARD_BOOTSTRAP_EMAIL", "admin@localhost"),
        secret_key=get("SWITCHBOARD_SECRET_KEY", ""),
        uvloop=_bool(get("SWITCHBOARD_UVLOOP", "1")),
        smtp_url=get("SWITCHBOARD_SMTP_URL", ""),
        mail_from=get("SWITCHBOARD_MAIL_FROM", ""),
        smtp_timeout_seconds=float(get("SWITCHBOARD_SMTP_TIMEOUT", "10")),
        password_reset_ttl_seconds=int(get("SWITCHBOARD_PASSWORD_RESET_TTL", "3600")),
        apns_key_file=get("SWITCHBOARD_APNS_KEY_FILE", ""),
        apns_key_id=get("SWITCHBOARD_APNS_KEY_ID", ""),
        apns_team_id=get("SWITCHBOARD_APNS_TEAM_ID", ""),
        apns_topic=get("SWITCHBOARD_APNS_TOPIC", ""),
        apns_url=get("SWITCHBOARD_APNS_URL", "").rstrip("/"),
        apns_sandbox_url=get("SWITCHBOARD_APNS_SANDBOX_URL", "").rstrip("/"),
        apns_ca_file=get("SWITCHBOARD_APNS_CA_FILE", ""),
        apns_timeout_seconds=float(get("SWITCHBOARD_APNS_TIMEOUT", "10")),
        vapid_private_key=get("SWITCHBOARD_VAPID_PRIVATE_KEY", ""),
        vapid_subject=get("SWITCHBOARD_VAPID_SUBJECT", ""),
        webpush_timeout_seconds=float(get("SWITCHBOARD_WEBPUSH_TIMEOUT", "10")),
        push_ttl_seconds=int(get("SWITCHBOARD_PUSH_TTL", str(24 * 3600))),
        push_send_wait_seconds=float(get("SWITCHBOARD_PUSH_SEND_WAIT", "3")),
        action_token_ttl_seconds=int(get("SWITCHBOARD_ACTION_TOKEN_TTL", "3600")),
        live_activity_attributes_type=get("SWITCHBOARD_LIVE_ACTIVITY_ATTRIBUTES_TYPE", "WorkflowActivityAttributes"),
        agent_max_tool_rounds=int(get("SWITCHBOARD_AGENT_MAX_TOOL_ROUNDS", "8")),
        agent_tool_timeout_seconds=float(get("SWITCHBOARD_AGENT_TOOL_TIMEOUT", "30")),
        agent_approval_timeout_seconds=int(get("SWITCHBOARD_AGENT_APPROVAL_TIMEOUT", "600")),
        agent_history_messages=int(get("SWITCHBOARD_AGENT_HISTORY_MESSAGES", "50")),
        s3_bucket=get("SWITCHBOARD_S3_BUCKET", ""),
        s3_endpoint_url=get("SWITCHBOARD_S3_ENDPOINT_URL", "").rstrip("/"),
        s3_region=get("SWITCHBOARD_S3_REGION", ""),
        file_max_bytes=int(get("SWITCHBOARD_FILE_MAX_BYTES", str(100 * 1024 * 1024))),
        file_types=tuple(t.strip().lower() for t in get("SWITCHBOARD_FILE_TYPES", "").split(",") if t.strip()),
        upload_ttl_seconds=int(get("SWITCHBOARD_UPLOAD_TTL", "3600")),
        file_retention_seconds=int(float(get("SWITCHBOARD_FILE_RETENTION_DAYS", "30")) * 24 * 3600),
        agent_history_tokens=int(get("SWITCHBOARD_AGENT_HISTORY_TOKENS", "12000")),
        provider_keys={
            name: value
            for name, variable in _PROVIDER_KEYS.items()
            if (value := get(variable, "").strip())
        },
    )
