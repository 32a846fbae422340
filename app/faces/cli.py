"""The ``switchboard`` command: serve, migrate, bootstrap, create-api-key, set-plan,
makemigrations."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import socket
import sys
from dataclasses import replace
from typing import Any, Awaitable, Callable, Sequence

from tortoise import Tortoise

from ..kernel.auth import SCOPES
from ..kernel.config import Settings, load_settings
from ..kernel.db import init_db, migrate, tortoise_config
from ..kernel.errors import SwitchboardError

__all__ = ["main"]

_BACKLOG = 100  # hypercorn's default


async def _with_db(settings: Settings, fn: Callable[[], Awaitable[Any]]) -> Any:
    await migrate(settings)
    await init_db(settings)
    try:
        return await fn()
    finally:
        await Tortoise.close_connections()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=None))


async def _bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import accounts

    result = await _with_db(
        settings,
        lambda: accounts.bootstrap(args.org, args.email, args.password, plan=args.plan),
    )
    if args.json:
        _print_json(
            {
                "organization": {"id": result.organization.id, "name": result.organization.name},
                "user": {"id": result.user.id, "email": result.user.email},
                "api_key": result.api_key,
            }
        )
    else:
        print(f"organization: {result.organization.id} ({result.organization.name})")
        print(f"owner:        {result.user.email} ({result.user.id})")
        print(f"api key:      {result.api_key}   (shown once; store it now)")
    return 0


async def _create_api_key(settings: Settings, args: argparse.Namespace) -> int:
    from ..models.core import Membership, Organization
    from ..services import api_keys

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()] if args.scopes else list(SCOPES)

    async def run() -> dict[str, Any]:
        org = await Organization.get_or_none(id=args.org)
        if org is None:
            raise SwitchboardError(f"No organization with id {args.org}.")
        owner = await Membership.filter(organization=org, role="owner").select_related("user").first()
        raw = await api_keys.create_key_record(
            org, name=args.name, scopes=scopes, user=owner.user if owner else None
        )
        return {"organization_id": org.id, "name": args.name, "scopes": scopes, "api_key": raw}

    out = await _with_db(settings, run)
    if args.json:
        _print_json(out)
    else:
        print(f"api key: {out['api_key']}   (shown once; store it now)")
    return 0


async def _set_plan(settings: Settings, args: argparse.Namespace) -> int:
    from ..services import accounts

    org = await _with_db(settings, lambda: accounts.set_plan(args.org, args.plan))
    print(f"{org.id}: plan {org.plan}")
    return 0


async def _first_start(settings: Settings) -> None:
    """On a database with no organization, create one and print its login and key once."""
    from ..services import accounts

    async def run() -> None:
        if await accounts.organization_count():
            return
        password = secrets.token_urlsafe(12)
        result = await accounts.bootstrap(settings.bootstrap_org, settings.bootstrap_email, password)
        print(
            "\nFirst start: created an organization and its owner (shown once, store them now)\n"
            f"  organization: {result.organization.name} ({result.organization.id})\n"
            f"  login:        {result.user.email}\n"
            f"  password:     {password}\n"
            f"  api key:      {result.api_key}\n",
            flush=True,
        )

    await _with_db(settings, run)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, set up as hypercorn sets up its own."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def _serve(settings: Settings) -> int:
    from ..serving.server import run, serve

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host = settings.host.strip("[]")
    address = f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"
    from ..services import mail, push_queue

    try:
        mail.configure(settings)
        push_queue.configure(settings)
    except ValueError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    # Bind before anything is announced: a taken port is one line on stderr and exit 1.
    try:
        sock = _listen(host, settings.port)
    except OSError as exc:
        print(f"switchboard: cannot listen on {address}: {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
        return 1
    with sock:
        asyncio.run(_first_start(settings))
        print(f"Switchboard listening on http://{address}", flush=True)
        try:
            run(serve(settings, sock=sock, auto_migrate=False, freeze_gc=True), settings)
        except KeyboardInterrupt:
            pass
    return 0


def _makemigrations(settings: Settings, args: argparse.Namespace) -> int:
    """Generate migrations with tortoise's own tool, against this project's config."""
    from tortoise.cli import cli as tortoise_cli

    sys.modules["switchboard_tortoise_config"] = type(sys)("switchboard_tortoise_config")
    sys.modules["switchboard_tortoise_config"].TORTOISE_ORM = tortoise_config(  # type: ignore[attr-defined]
        settings.effective_database_url
    )
    argv = ["tortoise", "-c", "switchboard_tortoise_config.TORTOISE_ORM", "makemigrations"]
    if args.name:
        argv += ["--name", args.name]
    argv += args.apps
    sys.argv = argv
    tortoise_cli.main()
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="switchboard", description="Switchboard gateway")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="apply migrations and serve")
    s.add_argument("--host")
    s.add_argument("--port", type=int)

    sub.add_parser("migrate", help="apply pending migrations")

    b = sub.add_parser("bootstrap", help="create an organization, its owner and an API key")
    b.add_argument("--org", required=True)
    b.add_argument("--email", required=True)
    b.add_argument("--password", required=True)
    b.add_argument("--plan", default="self-hosted")
    b.add_argument("--json", action="store_true")

    k = sub.add_parser("create-api-key", help="create an API key for an organization")
    k.add_argument("--org", required=True)
    k.add_argument("--name", required=True)
    k.add_argument("--scopes", help="comma-separated; default: all scopes")
    k.add_argument("--json", action="store_true")

    sp = sub.add_parser("set-plan", help="set an organization's plan")
    sp.add_argument("--org", required=True)
    sp.add_argument("--plan", required=True)

    m = sub.add_parser("makemigrations", help="generate migrations from model changes")
    m.add_argument("apps", nargs="*")
    m.add_argument("--name")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "serve":
            settings = replace(
                settings,
                host=args.host or settings.host,
                port=args.port or settings.port,
            )
            return _serve(settings)
        if args.command == "migrate":
            asyncio.run(migrate(settings))
            print("migrations applied")
            return 0
        if args.command == "makemigrations":
            return _makemigrations(settings, args)
        handler = {
            "bootstrap": _bootstrap,
            "create-api-key": _create_api_key,
            "set-plan": _set_plan,
        }[args.command]
        return asyncio.run(handler(settings, args))
    except SwitchboardError as exc:
        detail = f" ({exc.details})" if exc.details else ""
        print(f"error: {exc.message}{detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
