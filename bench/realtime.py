"""Originate throughput and end-to-end latency to socket.io clients, against the framework floor.

The server runs on SQLite in its own process (`switchboard serve`, bootstrapped with the CLI).
N socket.io clients subscribe to every conversation; originate is driven over HTTP:

1. floor: `GET /healthz` as fast as the server answers (closed loop);
2. originate as fast as the server accepts it (closed loop): accepted messages/s;
3. originate at rising offered rates (open loop): accepted/s and end-to-end latency
   (request scheduled -> `message.created` at a client), p50/p95/p99 over every
   (message, client) pair. Latency counts from the scheduled time, so queueing counts too.

    .venv/bin/python bench/realtime.py [--clients 4] [--conversations 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import socketio  # noqa: E402

from bench._common import Conn, closed_loop, percentile, start_server  # noqa: E402


async def run(args: argparse.Namespace) -> None:
    server = start_server()
    try:
        await bench(server, args)
    finally:
        server.stop()


async def bench(server, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {server.api_key}"}
    setup = await Conn(server.host, server.port).open()
    status, body = await setup.json("POST", "/api/v1/agents", auth, {"name": "Bench", "protocol": "custom", "provider": "anthropic", "model": "claude-bench"})
    assert status == 201, body
    agent_id = body["agent"]["id"]
    convs = []
    for i in range(args.conversations):
        status, body = await setup.json("POST", f"/api/v1/agents/{agent_id}/conversations/create", auth, {"title": f"c{i}"})
        assert status == 201, body
        convs.append(body["conversation"]["id"])
    await setup.close()

    sent_at: dict[str, float] = {}
    arrivals: list[tuple[str, float]] = []
    clients = []
    for _ in range(args.clients):
        client = socketio.AsyncClient(reconnection=False)

        async def on_message(data: dict, _c=client) -> None:  # type: ignore[no-untyped-def]
            arrivals.append((data["content"], time.perf_counter()))

        client.on("message.created", on_message)
        await client.connect(server.url, auth={"token": server.api_key}, transports=["websocket"])
        for conv in convs:
            ack = await client.call("subscribe", {"conversation_id": conv}, timeout=10)
            assert ack.get("success"), ack
        clients.append(client)

    healthz = {"Connection": "keep-alive"}

    async def health(conn: Conn, _: int) -> bool:
        status, _b = await conn.request("GET", "/healthz", healthz)
        return status == 200

    ok, errors, elapsed = await closed_loop(server.host, server.port, args.concurrency, args.seconds, health)
    floor = ok / elapsed
    print(f"floor      GET /healthz            {floor:8.0f} req/s   ({ok} ok, {errors} errors, {args.concurrency} connections)")

    headers = {**auth, "Content-Type": "application/json"}

    def originate_body(tag: str, i: int) -> tuple[str, bytes]:
        conv = convs[i % len(convs)]
        return f"/api/v1/conversations/{conv}/originate", json.dumps({"content": tag, "role": "assistant"}).encode()

    async def originate(conn: Conn, i: int) -> bool:
        tag = f"max-{i}"
        path, payload = originate_body(tag, i)
        sent_at[tag] = time.perf_counter()
        status, _b = await conn.request("POST", path, headers, payload)
        return status == 201

    ok, errors, elapsed = await closed_loop(server.host, server.port, args.concurrency, args.seconds, originate)
    peak = ok / elapsed
    print(f"originate  closed loop             {peak:8.0f} msg/s   ({ok} ok, {errors} errors)  = {peak / floor:.2f} x floor")
    await asyncio.sleep(1.0)

    print(f"{'offered':>8} {'accepted/s':>11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'events':>9} {'missing':>8}")
    for rate in args.rates:
        arrivals.clear()
        sent_at.clear()
        total = int(rate * args.seconds)
        queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
        accepted = 0
        done_at = 0.0

        async def worker() -> None:
            nonlocal accepted, done_at
            conn = await Conn(server.host, server.port).open()
            while True:
                job = await queue.get()
                if job is None:
                    break
                i, scheduled = job
                tag = f"r{rate}-{i}"
                sent_at[tag] = scheduled
                path, payload = originate_body(tag, i)
                status, _b = await conn.request("POST", path, headers, payload)
                if status == 201:
                    accepted += 1
                done_at = time.perf_counter()
            await conn.close()

        workers = [asyncio.create_task(worker()) for _ in range(args.workers)]
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((i, scheduled))
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        await asyncio.sleep(1.0)  # let the last events arrive
        latencies = [(t - sent_at[tag]) * 1000 for tag, t in arrivals if tag in sent_at]
        expected = accepted * len(clients)
        print(
            f"{rate:>8} {accepted / max(done_at - start, 1e-9):>11.0f} {percentile(latencies, 50):>8.1f} "
            f"{percentile(latencies, 95):>8.1f} {percentile(latencies, 99):>8.1f} {len(latencies):>9} {expected - len(latencies):>8}"
        )
        await asyncio.sleep(0.5)

    for client in clients:
        await client.disconnect()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=4, help="socket.io clients, each subscribed to every conversation")
    p.add_argument("--conversations", type=int, default=20)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32, help="connections for the closed-loop runs")
    p.add_argument("--workers", type=int, default=64, help="connections for the open-loop runs")
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[250, 500, 1000, 1500])
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
