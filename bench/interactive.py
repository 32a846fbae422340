"""Interactive approvals: answers/s, answer -> callback latency, long-pollers released.

The server runs on SQLite in its own process. 50 members each own 2 conversations (100 in
all); an automation (API key) sends 10 approvals to each. Each member answers over
socket.io (`interactive.respond`); the signed callback lands on a receiver in this process
that verifies every signature and counts every callback.

1. throughput: the 1,000 approvals answered as fast as the 50 clients go (closed loop);
2. latency: another `--rate` x `--seconds` approvals answered at a fixed rate (open loop):
   answer sent -> callback received, p50/p95/p99;
3. long-poll: 200 HTTP clients wait on `GET /api/v1/messages/:id?wait=30`, then the
   approvals are answered: how many were released, and answer -> release p50/p99.

Checks: every answer acknowledged once, one callback per answer (0 lost, 0 duplicates),
every signature valid.

    BENCH_SERVER_CPUS=0 BENCH_CLIENT_CPUS=1 .venv/bin/python bench/interactive.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import socketio  # noqa: E402

from bench._common import Conn, percentile, start_server  # noqa: E402
from tests.fakes.webhook_receiver import Received, WebhookReceiver  # noqa: E402

APPROVAL = [{"type": "header", "text": "Refund"}, {"type": "text", "text": "Refund order #1234?"}, {"type": "boolean"}]


async def run(args: argparse.Namespace) -> None:
    server = start_server({"SWITCHBOARD_LOG_LEVEL": "ERROR"})
    receiver = await WebhookReceiver().start()
    callbacks: Counter[str] = Counter()
    arrived: dict[str, float] = {}

    def on_callback(_: WebhookReceiver, record: Received) -> None:
        message_id = record.json["message_id"]
        callbacks[message_id] += 1
        arrived.setdefault(message_id, time.perf_counter())

    receiver.respond = on_callback
    try:
        await bench(server, receiver, callbacks, arrived, args)
    finally:
        await receiver.stop()
        server.stop()


async def bench(server: Any, receiver: WebhookReceiver, callbacks: Counter[str], arrived: dict[str, float], args: argparse.Namespace) -> None:
    key = {"Authorization": f"Bearer {server.api_key}"}
    setup = await Conn(server.host, server.port).open()
    status, body = await setup.json("GET", "/api/v1/organization/callback-secret", key)
    assert status == 200, body
    receiver.secrets.append(body["callback_secret"])
    status, body = await setup.json("POST", "/api/v1/agents", key, {"name": "Approvals", "protocol": "custom", "provider": "anthropic", "model": "claude-bench"})
    assert status == 201, body
    agent_id = body["agent"]["id"]

    members: list[tuple[str, str]] = []  # (user id, session token)
    for i in range(args.members):
        status, body = await setup.json("POST", "/api/v1/organization/members", key, {"email": f"m{i}@bench.example"})
        assert status == 201, body
        status, accepted = await setup.json("POST", "/api/v1/auth/accept-invite", {}, {"token": body["invite_token"], "password": "member password 1"})
        assert status == 200, accepted
        members.append((accepted["user"]["id"], accepted["token"]))
    convs: list[tuple[str, int]] = []  # (conversation id, member index)
    for n, (user_id, _token) in enumerate(members):
        for _ in range(args.conversations // args.members):
            status, body = await setup.json("POST", f"/api/v1/agents/{agent_id}/conversations/create", key, {"user_id": user_id})
            assert status == 201, body
            convs.append((body["conversation"]["id"], n))

    async def ask(count: int) -> list[tuple[str, int]]:
        made = []
        conn = await Conn(server.host, server.port).open()
        for i in range(count):
            if i and i % 500 == 0:  # the server closes a keep-alive connection after 1,000 requests
                await conn.close()
                conn = await Conn(server.host, server.port).open()
            conv, owner = convs[i % len(convs)]
            status, body = await conn.json(
                "POST", f"/api/v1/conversations/{conv}/interactive", key,
                {"callback_url": receiver.url, "callback_id": f"cb-{i}", "elements": APPROVAL},
            )
            assert status == 201, body
            made.append((body["message"]["id"], owner))
        await conn.close()
        return made

    clients: list[socketio.AsyncClient] = []
    for _user, token in members:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(server.url, auth={"token": token}, transports=["websocket"])
        clients.append(client)

    answered_at: dict[str, float] = {}
    failures: list[Any] = []

    async def answer(message_id: str, owner: int) -> None:
        answered_at[message_id] = time.perf_counter()
        ack = await clients[owner].call("interactive.respond", {"message_id": message_id, "approved": True}, timeout=30)
        if not ack.get("success"):
            failures.append(ack)

    async def settled(ids: list[str], timeout: float = 30) -> None:
        deadline = time.perf_counter() + timeout
        while any(i not in arrived for i in ids) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a duplicate would arrive now

    # 1. throughput ---------------------------------------------------------------
    pending = await ask(args.approvals)
    by_owner: dict[int, list[str]] = {}
    for message_id, owner in pending:
        by_owner.setdefault(owner, []).append(message_id)

    async def member(owner: int) -> None:
        for message_id in by_owner.get(owner, []):
            await answer(message_id, owner)

    print(f"throughput  answering {len(pending)} approvals ...", flush=True)
    started = time.perf_counter()
    await asyncio.gather(*(member(n) for n in range(len(clients))))
    elapsed = time.perf_counter() - started
    ids = [m for m, _ in pending]
    await settled(ids)
    lost = sum(1 for i in ids if callbacks[i] == 0)
    dupes = sum(1 for i in ids if callbacks[i] > 1)
    print(f"throughput  {len(ids)} approvals, {len(clients)} clients: {len(ids) / elapsed:7.0f} answers/s   "
          f"(answer failures {len(failures)}, callbacks lost {lost}, duplicated {dupes})")
    throughput_lat = [(arrived[i] - answered_at[i]) * 1000 for i in ids if i in arrived]
    print(f"            answer -> callback under that load: p50 {percentile(throughput_lat, 50):.1f} ms, p99 {percentile(throughput_lat, 99):.1f} ms")

    # 2. latency at a fixed rate -------------------------------------------------------
    total = int(args.rate * args.seconds)
    paced = await ask(total)
    start = time.perf_counter()
    tasks = []
    for i, (message_id, owner) in enumerate(paced):
        delay = start + i / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(answer(message_id, owner)))
    await asyncio.gather(*tasks)
    ids = [m for m, _ in paced]
    await settled(ids)
    lat = [(arrived[i] - answered_at[i]) * 1000 for i in ids if i in arrived]
    lost = sum(1 for i in ids if callbacks[i] == 0)
    dupes = sum(1 for i in ids if callbacks[i] > 1)
    print(f"latency     {args.rate}/s answers for {args.seconds:g} s: answer -> callback p50 {percentile(lat, 50):.1f} ms, "
          f"p95 {percentile(lat, 95):.1f} ms, p99 {percentile(lat, 99):.1f} ms   (lost {lost}, duplicated {dupes})")

    # 3. long-pollers --------------------------------------------------------------
    polled = await ask(args.pollers)
    released: dict[str, float] = {}

    async def poll(message_id: str) -> None:
        conn = await Conn(server.host, server.port).open()
        try:
            status, body = await conn.json("GET", f"/api/v1/messages/{message_id}?wait=30", key)
            if status == 200 and body["message"]["interaction"]["status"] == "responded":
                released[message_id] = time.perf_counter()
        finally:
            await conn.close()

    pollers = [asyncio.create_task(poll(m)) for m, _ in polled]
    await asyncio.sleep(1.0)  # every poller is parked on the server
    await asyncio.gather(*(answer(m, owner) for m, owner in polled))
    await asyncio.wait_for(asyncio.gather(*pollers), timeout=40)
    await settled([m for m, _ in polled])
    wake = [(released[m] - answered_at[m]) * 1000 for m, _ in polled if m in released]
    print(f"long-poll   {len(polled)} waiting: {len(released)} released with the answer; answer -> release "
          f"p50 {percentile(wake, 50):.1f} ms, p99 {percentile(wake, 99):.1f} ms")
    bad = [r for r in receiver.received if not r.signed_with]
    print(f"checks      answer failures {len(failures)}, callbacks {sum(callbacks.values())} for {len(answered_at)} answers, "
          f"unsigned or badly signed {len(bad)}")

    await setup.close()
    for client in clients:
        await client.disconnect()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=50, help="people answering, one socket.io client each")
    p.add_argument("--conversations", type=int, default=100)
    p.add_argument("--approvals", type=int, default=1000)
    p.add_argument("--rate", type=int, default=200, help="answers per second in the latency phase")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--pollers", type=int, default=200)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
