"""Webhook delivery throughput through the outbox, with loss and order checks.

The server runs on SQLite in its own process. A webhook agent points at a receiver in this
process (aiohttp on loopback) that verifies every signature. User messages are posted over
HTTP to several conversations concurrently (each conversation's messages one after another,
so their seq order is known); the receiver checks that every message arrives, exactly once
acknowledged, and in seq order per conversation.

    .venv/bin/python bench/webhooks.py [--conversations 50] [--messages 40]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Conn, start_server  # noqa: E402
from tests.fakes.webhook_receiver import WebhookReceiver  # noqa: E402


async def run(args: argparse.Namespace) -> None:
    # A long webhook timeout: in the drain phase the receiver holds its first requests while
    # the backlog is posted, and those must not time out and go to backoff.
    server = start_server({"SWITCHBOARD_OUTBOX_CONCURRENCY": str(args.concurrency), "SWITCHBOARD_WEBHOOK_TIMEOUT": "120"})
    receiver = await WebhookReceiver().start()
    try:
        await bench(server, receiver, args)
    finally:
        await receiver.stop()
        server.stop()


async def bench(server, receiver: WebhookReceiver, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {server.api_key}"}
    setup = await Conn(server.host, server.port).open()
    status, body = await setup.json("POST", "/api/v1/agents", auth, {"name": "Hook", "webhook_url": receiver.url})
    assert status == 201, body
    agent = body["agent"]
    receiver.secrets.append(agent["signing_secret"])
    convs = []
    for _ in range(args.conversations):
        status, body = await setup.json("POST", f"/api/v1/agents/{agent['id']}/conversations/create", auth, {})
        convs.append(body["conversation"]["id"])
    await setup.close()

    sent: dict[str, list[str]] = {c: [] for c in convs}
    gate = asyncio.Event()
    if args.mode == "drain":
        gate.clear()
    else:
        gate.set()

    async def held(_: WebhookReceiver, __: object) -> None:
        await gate.wait()

    receiver.respond = held

    async def sender(conv: str) -> None:
        conn = await Conn(server.host, server.port).open()
        for i in range(args.messages):
            status, body = await conn.json("POST", f"/api/v1/conversations/{conv}/messages", auth, {"content": f"m{i}"})
            assert status == 201, body
            sent[conv].append(body["message"]["id"])
        await conn.close()

    total = args.conversations * args.messages
    start = post_start = time.perf_counter()
    await asyncio.gather(*(sender(c) for c in convs))
    posted = time.perf_counter()
    if args.mode == "drain":
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        gate.set()
    deadline = posted + args.timeout
    while len(receiver.acknowledged) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    done = time.perf_counter()

    acked = receiver.acknowledged
    arrival_ids = [r.json["messageId"] for r in acked]
    lost = total - len(set(arrival_ids))
    duplicates = len(arrival_ids) - len(set(arrival_ids))
    out_of_order = 0
    for conv, ids in sent.items():
        arrived = [r.json["messageId"] for r in acked if r.json["conversationId"] == conv]
        position = {m: i for i, m in enumerate(ids)}
        seqs = [position[m] for m in arrived]
        out_of_order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    times = [r for r in receiver.received]
    span = done - start
    print(f"messages posted         {total} over {args.conversations} conversations in {posted - post_start:.2f} s ({total / (posted - post_start):.0f} msg/s)")
    since = "the first post" if args.mode == "live" else "opening the receiver on a full backlog"
    print(f"deliveries acknowledged {len(acked)} in {span:.2f} s from {since}: {len(acked) / span:.0f} deliveries/s")
    print(f"lost {lost}   duplicates {duplicates}   out of order {out_of_order}   bad signatures {len(receiver.invalid)}   requests {len(times)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=int, default=50)
    p.add_argument("--messages", type=int, default=40, help="per conversation")
    p.add_argument("--concurrency", type=int, default=64, help="SWITCHBOARD_OUTBOX_CONCURRENCY of the server")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument(
        "--mode",
        choices=["live", "drain"],
        default="live",
        help="live: deliver while posting; drain: post everything while the receiver holds "
        "its first requests, then time the outbox emptying the backlog",
    )
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
