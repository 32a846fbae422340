"""Push throughput: one bulk send to 10,000 devices (half iOS, half Web Push) against the
local fakes (tests/fakes: APNs over HTTP/2 + TLS with the provider token checked, a Web Push
service that checks VAPID and decrypts every body).

    python bench/push.py [--recipients 1000] [--per-recipient 10]

The server runs in its own process on SQLite (``BENCH_SERVER_CPUS=0 BENCH_CLIENT_CPUS=1``
pins it and this process, which also runs the fakes; ``BENCH_PROFILE`` runs a profiler
command, ``{pid}`` the server's, as the bulk call starts). Devices are written straight into the
database before the server starts (registering 10,000 through the API would time argon2,
not pushes). Prints the bulk call's latency, pushes/s per channel, enqueue -> received at
the fake p50/p99 (enqueue: the outbox row's creation, after the background fan-out) and the
total time until the last push arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Conn, percentile, start_server  # noqa: E402
from tests.fakes.apns import FakeAPNs, make_provider_key  # noqa: E402
from tests.fakes.webpush import FakePushService  # noqa: E402

TEAM_ID, KEY_ID, BUNDLE = "BENCHTEAM1", "BENCHKEY01", "com.example.bench"


async def seed(data_dir: Path, web: FakePushService, recipients: int, per_recipient: int, mix: str) -> list[str]:
    """``recipients`` members of the bench organization, each with ``per_recipient`` devices."""
    import secrets

    from tortoise import Tortoise

    from app.kernel import crypto
    from app.kernel.config import Settings
    from app.kernel.db import tortoise_config
    from app.kernel.ids import new_id
    from app.kernel.timefmt import utcnow
    from app.models.core import Membership, Organization, User
    from app.models.push import Device
    from app.services.push_devices import _token_key, sealed_owner

    settings = Settings(data_dir=data_dir)
    crypto.configure(settings)
    await Tortoise.init(config=tortoise_config(settings.effective_database_url))
    try:
        org = await Organization.first()
        assert org is not None
        now = utcnow()
        users, members, devices, emails = [], [], [], []
        for i in range(recipients):
            email = f"person{i}@bench.example"
            user = User(id=new_id("user"), email=email, email_key=email, name=f"P{i}", created_at=now)
            users.append(user)
            members.append(Membership(organization_id=org.id, user_id=user.id, role="member", status="active", created_at=now))
            emails.append(email)
            for j in range(per_recipient):
                device_id = new_id("device")
                if mix == "ios" or (mix == "half" and j % 2 == 0):
                    token = secrets.token_hex(32)
                    devices.append(Device(id=device_id, organization_id=org.id, user_id=user.id, platform="ios", token=token,
                                          token_key=_token_key("ios", token), bundle_id=BUNDLE, environment="production",
                                          created_at=now, updated_at=now))
                else:
                    sub = web.subscribe()
                    devices.append(Device(id=device_id, organization_id=org.id, user_id=user.id, platform="web",
                                          token=sub["endpoint"], token_key=_token_key("web", sub["endpoint"]),
                                          p256dh=sub["keys"]["p256dh"], auth=crypto.encrypt(sub["keys"]["auth"], sealed_owner(device_id)),
                                          environment="production", created_at=now, updated_at=now))
        await User.bulk_create(users, batch_size=500)
        await Membership.bulk_create(members, batch_size=500)
        await Device.bulk_create(devices, batch_size=500)
    finally:
        await Tortoise.close_connections()
    return emails


async def enqueue_times(data_dir: Path) -> dict[str, float]:
    """notification id -> when its device deliveries were written (outbox created_at)."""
    import sqlite3

    db = sqlite3.connect(data_dir / "switchboard.db")
    try:
        rows = db.execute("SELECT group_id, MIN(created_at) FROM outbox WHERE kind = 'push' GROUP BY group_id").fetchall()
    finally:
        db.close()
    return {group: datetime.fromisoformat(created).timestamp() for group, created in rows}


def fanout_span(data_dir: Path, since: float) -> tuple[float, float]:
    """(first, last) time the bulk send's device deliveries were written (after ``since``)."""
    import sqlite3

    db = sqlite3.connect(data_dir / "switchboard.db")
    try:
        rows = db.execute("SELECT created_at FROM outbox WHERE kind = 'push'").fetchall()
    finally:
        db.close()
    times = [t for (created,) in rows if (t := datetime.fromisoformat(created).timestamp()) >= since]
    return min(times), max(times)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--per-recipient", type=int, default=10)
    parser.add_argument("--mix", choices=("half", "ios", "web"), default="half", help="which devices each recipient has")
    args = parser.parse_args()
    total = args.recipients * args.per_recipient

    from cryptography.hazmat.primitives.asymmetric import ec

    from app.kernel.vapid import VapidKey

    work = Path(tempfile.mkdtemp(prefix="switchboard-push-bench-"))
    private, public = make_provider_key()
    key_file = work / "AuthKey.p8"
    key_file.write_text(private)
    vapid = VapidKey(ec.generate_private_key(ec.SECP256R1()), "mailto:bench@example.com")
    apns = await FakeAPNs(TEAM_ID, KEY_ID, public, topics={BUNDLE}).start(work)
    web = await FakePushService(vapid_public_key=vapid.public_key).start()
    server = start_server({
        "SWITCHBOARD_APNS_KEY_FILE": str(key_file),
        "SWITCHBOARD_APNS_KEY_ID": KEY_ID,
        "SWITCHBOARD_APNS_TEAM_ID": TEAM_ID,
        "SWITCHBOARD_APNS_TOPIC": BUNDLE,
        "SWITCHBOARD_APNS_URL": apns.url,
        "SWITCHBOARD_APNS_CA_FILE": str(apns.ca_file),
        "SWITCHBOARD_VAPID_PRIVATE_KEY": vapid.private_pem,
        "SWITCHBOARD_VAPID_SUBJECT": "mailto:bench@example.com",
    })
    try:
        emails = await seed(server.data_dir, web, args.recipients, args.per_recipient, args.mix)
        conn = await Conn(server.host, server.port).open()
        headers = {"Authorization": f"Bearer {server.api_key}"}
        # Warm the connections to both fakes (and the server's code paths) with one send.
        await conn.json("POST", "/api/push/send", headers, {"email": emails[0], "title": "warm", "body": "up"})
        per_ios = {"half": (args.per_recipient + 1) // 2, "ios": args.per_recipient, "web": 0}[args.mix]
        await apns.wait_for(per_ios)
        await web.wait_for(args.per_recipient - per_ios)
        apns.received.clear()
        web.received.clear()

        profiler = None
        if os.environ.get("BENCH_PROFILE"):  # e.g. "py-spy record -d 4 -f raw -o out.raw -p {pid}"
            profiler = subprocess.Popen(shlex.split(os.environ["BENCH_PROFILE"].format(pid=server.proc.pid)))
            await asyncio.sleep(1)  # let it attach
        server_cpu, own_cpu = cpu_seconds(server.proc.pid), cpu_seconds(os.getpid())
        started = time.time()
        status, body = await conn.json("POST", "/api/push/send/bulk", headers,
                                       {"recipients": emails, "title": "Announcement", "body": "New features available", "priority": "high"})
        answered = time.time()
        assert status == 200, body
        queued = sum(r["total_devices"] for r in body["results"] if r["success"])
        ios = per_ios * args.recipients
        browsers = total - ios
        await apns.wait_for(ios, timeout=600)
        await web.wait_for(browsers, timeout=600)
        server_cpu, own_cpu = cpu_seconds(server.proc.pid) - server_cpu, cpu_seconds(os.getpid()) - own_cpu
        if profiler is not None:
            profiler.wait()
        await conn.close()
        done = max(r.at for r in apns.received + web.received)
        enqueued = await enqueue_times(server.data_dir)
        lat_apns = [(r.at - enqueued[r.payload["notification_id"]]) * 1000 for r in apns.received]
        lat_web = [(r.at - enqueued[r.payload["notification_id"]]) * 1000 for r in web.received]
        lat_all = lat_apns + lat_web
        apns_span = max((r.at for r in apns.received), default=started + 1) - started
        web_span = max((r.at for r in web.received), default=started + 1) - started
        load = os.getloadavg()[0]
        print(json.dumps({"recipients": args.recipients, "devices": queued, "load_average": round(load, 2)}))
        print(f"bulk call answered in {(answered - started) * 1000:.0f} ms ({len(body['results'])} recipients, {queued} devices)")
        first, last = fanout_span(server.data_dir, started)
        print(f"fan-out: device deliveries written from {(first - started) * 1000:.0f} to {(last - started) * 1000:.0f} ms after the call")
        print(f"APNs:     {len(apns.received)} pushes in {apns_span:.2f} s = {len(apns.received) / apns_span:,.0f} pushes/s; "
              f"enqueue -> received p50 {percentile(lat_apns, 50):.0f} ms, p99 {percentile(lat_apns, 99):.0f} ms")
        print(f"Web Push: {len(web.received)} pushes in {web_span:.2f} s = {len(web.received) / web_span:,.0f} pushes/s; "
              f"enqueue -> received p50 {percentile(lat_web, 50):.0f} ms, p99 {percentile(lat_web, 99):.0f} ms")
        print(f"all:      {len(lat_all)} pushes in {done - started:.2f} s = {len(lat_all) / (done - started):,.0f} pushes/s; "
              f"enqueue -> received p50 {percentile(lat_all, 50):.0f} ms, p99 {percentile(lat_all, 99):.0f} ms; "
              f"rejected {len(apns.rejected) + len(web.rejected)}; APNs connections {apns.connections}")
        span = done - started
        print(f"CPU while pushing: server {server_cpu:.2f} s ({server_cpu / span * 100:.0f} % of a core, "
              f"{server_cpu / len(lat_all) * 1000:.2f} ms per push); benchmark and fakes {own_cpu:.2f} s "
              f"({own_cpu / span * 100:.0f} % of a core)")
    finally:
        server.stop()
        await apns.stop()
        await web.stop()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
