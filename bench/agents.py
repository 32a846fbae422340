"""Custom agents: the gateway's own time around a streamed reply, with a fake provider that
answers at once (tests/fakes/llm.py, Anthropic's streaming format).

    python bench/agents.py [--messages 200] [--conversations 50]

1. Added time to first delta: a user message is POSTed and the clock runs until its
   reply's first ``message.delta`` reaches a socket.io client; the provider adds nothing,
   so this is the gateway (storing the message, starting the runner, the provider call
   through the SDK, the event fan-out). Sequential, one conversation.
2. Streaming at once: ``--conversations`` replies stream together, each 100 deltas 20 ms
   apart (2 s); for each conversation the longest gap between two of its delta events
   (the runner joins deltas into events of at most ~20 a second, so ~50 ms is normal).

Server on SQLite in its own process (``BENCH_SERVER_CPUS=0 BENCH_CLIENT_CPUS=1`` pins it
and this process, which also runs the fake provider).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import socketio  # noqa: E402

from bench._common import Conn, percentile, start_server  # noqa: E402
from tests.fakes.llm import FakeLLM, Reply, Text  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=50)
    args = parser.parse_args()
    llm = await FakeLLM().start()
    server = start_server()
    sio = socketio.AsyncClient(reconnection=False)
    try:
        key = {"Authorization": f"Bearer {server.api_key}"}
        conn = await Conn(server.host, server.port).open()
        status, body = await conn.json("POST", "/api/v1/credentials", key,
                                       {"name": "fake", "provider": "anthropic", "value": llm.api_key, "base_url": llm.url})
        assert status == 201, body
        status, body = await conn.json("POST", "/api/v1/agents", key, {
            "name": "Bench", "protocol": "custom", "provider": "anthropic", "model": "bench-1", "base_url": llm.url,
            "credential_id": body["credential"]["id"]})
        assert status == 201, body
        agent = body["agent"]["id"]
        convs = []
        for _ in range(args.conversations):
            status, body = await conn.json("POST", f"/api/v1/agents/{agent}/conversations/create", key, {})
            convs.append(body["conversation"]["id"])
        status, body = await conn.json("POST", "/api/v1/auth/login", {}, {"email": "bench@example.com", "password": "bench password 1"})
        session = body["token"]

        first: dict[str, float] = {}  # message id -> first delta's arrival
        by_conv: dict[str, list[float]] = {}
        replies: dict[str, asyncio.Event] = {}

        @sio.on("message.delta")
        async def on_delta(data: dict[str, str]) -> None:
            now = time.perf_counter()
            first.setdefault(data["message_id"], now)
            by_conv.setdefault(data["conversation_id"], []).append(now)

        @sio.on("message.created")
        async def on_created(data: dict[str, str]) -> None:
            if data["role"] == "assistant" and data["conversation_id"] in replies:
                replies[data["conversation_id"]].set()

        await sio.connect(server.url, auth={"token": session}, transports=["websocket"])

        async def say(conv: str, content: str, via: Conn | None = None) -> None:
            status, body = await (via or conn).json("POST", f"/api/v1/conversations/{conv}/messages", key, {"content": content})
            assert status == 201, body

        # 1. added time to first delta, sequentially
        added = []
        for i in range(args.messages + 10):
            llm.script(Reply([Text("A quick answer from the fake model.", chunks=4)]))
            replies[convs[0]] = asyncio.Event()
            before = set(first)
            started = time.perf_counter()
            await say(convs[0], f"question {i}")
            await asyncio.wait_for(replies[convs[0]].wait(), timeout=30)
            [new] = set(first) - before
            if i >= 10:  # the first ones warm the SDK's connection pool and the server
                added.append((first[new] - started) * 1000)
        # 2. many replies streaming at once
        by_conv.clear()
        for conv in convs:
            replies[conv] = asyncio.Event()
        llm.script(*(Reply([Text("word " * 100, chunks=100)], delay=0.02) for _ in convs))
        load_before = os.getloadavg()[0]
        conns = [await Conn(server.host, server.port).open() for _ in convs]
        started = time.perf_counter()
        await asyncio.gather(*(say(conv, "tell me a story", via) for conv, via in zip(convs, conns)))
        await asyncio.wait_for(asyncio.gather(*(replies[c].wait() for c in convs)), timeout=120)
        took = time.perf_counter() - started
        gaps = [max((b - a) * 1000 for a, b in zip(times, times[1:])) for times in by_conv.values() if len(times) > 1]
        events = sum(len(t) for t in by_conv.values())
        for c in [conn, *conns]:
            await c.close()
        print(json.dumps({"messages": args.messages, "conversations": args.conversations, "load_average": round(load_before, 2)}))
        print(f"added time to first delta: p50 {percentile(added, 50):.1f} ms, p99 {percentile(added, 99):.1f} ms, "
              f"max {max(added):.1f} ms ({len(added)} replies)")
        print(f"{len(convs)} replies streaming at once (100 deltas 20 ms apart each): all done in {took:.2f} s, "
              f"{events} delta events ({events / len(convs):.0f} per reply); longest gap between a reply's events: "
              f"p50 {percentile(gaps, 50):.0f} ms, p99 {percentile(gaps, 99):.0f} ms, max {max(gaps):.0f} ms")
    finally:
        if sio.connected:
            await sio.disconnect()
        server.stop()
        await llm.stop()


if __name__ == "__main__":
    asyncio.run(main())
