"""Originate throughput and end-to-end latency to socket.io clients, against the framework floor.

The server runs on SQLite in its own process (`switchboard serve`, bootstrapped with the CLI).
N socket.io clients subscribe to every conversation; originate is driven over HTTP:

1. floor: `GET /healthz` as fast as the server answers (closed loop);
2. originate as fast as the server accepts it (closed loop): accepted messages/s;
3. originate at rising offered rates (open loop): accepted/s and end-to-end latency
   (request scheduled -> `message.created` at a client), p50/p95/p99 over every
   (message, client) pair. Latency counts from the scheduled time, so queueing counts too.

The closed loops also print the server process's CPU time per request, which moves less than
throughput when other work shares the machine.

`--rate-limit` chooses the server's per-key rate limiting: `off` (SWITCHBOARD_RATE_LIMIT_PER_MINUTE=0),
`on` (the bundled plans with the self-hosted allowance raised so that every request is counted
and none refused), or `both`: one server of each, each step run on one then the other (which
goes first alternates), so both see the same machine; with `--repeat N` the medians of N rounds
are printed side by side.

    .venv/bin/python bench/realtime.py [--clients 4] [--conversations 20] [--seconds 5]
        [--rate-limit off|on|both] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import socketio  # noqa: E402

from bench._common import Conn, Server, closed_loop, percentile, start_server  # noqa: E402


def rate_limit_env(mode: str) -> dict[str, str]:
    if mode == "off":
        return {"SWITCHBOARD_RATE_LIMIT_PER_MINUTE": "0"}
    bundled = Path(__file__).resolve().parent.parent / "app" / "kernel" / "plans.json"
    plans = json.loads(bundled.read_text())
    plans["self-hosted"]["requests_per_minute"] = 10**9  # count every request, refuse none
    path = Path(tempfile.mkdtemp(prefix="switchboard-bench-plans-")) / "plans.json"
    path.write_text(json.dumps(plans))
    return {"SWITCHBOARD_PLANS_FILE": str(path)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


class Target:
    """One server under load: its conversations and its subscribed socket.io clients."""

    def __init__(self, server: Server, args: argparse.Namespace) -> None:
        self.server, self.args = server, args
        self.auth = {"Authorization": f"Bearer {server.api_key}"}
        self.headers = {**self.auth, "Content-Type": "application/json"}
        self.convs: list[str] = []
        self.clients: list[socketio.AsyncClient] = []
        self.sent_at: dict[str, float] = {}
        self.arrivals: list[tuple[str, float]] = []

    async def setup(self) -> None:
        setup = await Conn(self.server.host, self.server.port).open()
        status, body = await setup.json("POST", "/api/v1/agents", self.auth, {"name": "Bench", "protocol": "custom", "provider": "anthropic", "model": "claude-bench"})
        assert status == 201, body
        agent_id = body["agent"]["id"]
        for i in range(self.args.conversations):
            status, body = await setup.json("POST", f"/api/v1/agents/{agent_id}/conversations/create", self.auth, {"title": f"c{i}"})
            assert status == 201, body
            self.convs.append(body["conversation"]["id"])
        await setup.close()
        for _ in range(self.args.clients):
            client = socketio.AsyncClient(reconnection=False)

            async def on_message(data: dict[str, Any]) -> None:
                self.arrivals.append((data["content"], time.perf_counter()))

            client.on("message.created", on_message)
            await client.connect(self.server.url, auth={"token": self.server.api_key}, transports=["websocket"])
            for conv in self.convs:
                ack = await client.call("subscribe", {"conversation_id": conv}, timeout=10)
                assert ack.get("success"), ack
            self.clients.append(client)

    async def close(self) -> None:
        for client in self.clients:
            await client.disconnect()

    def originate_body(self, tag: str, i: int) -> tuple[str, bytes]:
        conv = self.convs[i % len(self.convs)]
        return f"/api/v1/conversations/{conv}/originate", json.dumps({"content": tag, "role": "assistant"}).encode()

    async def floor(self) -> tuple[float, float]:
        """GET /healthz closed loop: (requests/s, server CPU us per request)."""
        keep_alive = {"Connection": "keep-alive"}

        async def health(conn: Conn, _: int) -> bool:
            status, _b = await conn.request("GET", "/healthz", keep_alive)
            return status == 200

        return await self._closed(health)

    async def peak(self) -> tuple[float, float]:
        """Originate closed loop: (accepted/s, server CPU us per request)."""

        async def originate(conn: Conn, i: int) -> bool:
            tag = f"max-{i}"
            path, payload = self.originate_body(tag, i)
            status, _b = await conn.request("POST", path, self.headers, payload)
            return status == 201

        figures = await self._closed(originate)
        await asyncio.sleep(1.0)
        return figures

    async def _closed(self, make_request: Any) -> tuple[float, float]:
        cpu = cpu_seconds(self.server.proc.pid)
        ok, errors, elapsed = await closed_loop(self.server.host, self.server.port, self.args.concurrency, self.args.seconds, make_request)
        assert errors == 0, f"{errors} requests failed"  # a refused request would flatter the figure
        return ok / elapsed, (cpu_seconds(self.server.proc.pid) - cpu) / max(ok, 1) * 1e6

    async def offered(self, rate: int) -> tuple[float, float, float, float, int, int]:
        """Originate at ``rate``/s: (accepted/s, p50, p95, p99 ms, events, missing events)."""
        self.arrivals.clear()
        self.sent_at.clear()
        total = int(rate * self.args.seconds)
        queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
        accepted = 0
        done_at = 0.0

        async def worker() -> None:
            nonlocal accepted, done_at
            conn = await Conn(self.server.host, self.server.port).open()
            while True:
                job = await queue.get()
                if job is None:
                    break
                i, scheduled = job
                tag = f"r{rate}-{i}"
                self.sent_at[tag] = scheduled
                path, payload = self.originate_body(tag, i)
                status, _b = await conn.request("POST", path, self.headers, payload)
                if status == 201:
                    accepted += 1
                done_at = time.perf_counter()
            await conn.close()

        workers = [asyncio.create_task(worker()) for _ in range(self.args.workers)]
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
        latencies = [(t - self.sent_at[tag]) * 1000 for tag, t in self.arrivals if tag in self.sent_at]
        expected = accepted * len(self.clients)
        await asyncio.sleep(0.5)
        return (
            accepted / max(done_at - start, 1e-9), percentile(latencies, 50), percentile(latencies, 95),
            percentile(latencies, 99), len(latencies), expected - len(latencies),
        )


async def run(args: argparse.Namespace) -> None:
    modes = ["off", "on"] if args.rate_limit == "both" else [args.rate_limit]
    print(f"load average {loadavg()}")
    servers = {mode: start_server(rate_limit_env(mode)) for mode in modes}
    targets = {mode: Target(server, args) for mode, server in servers.items()}
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    try:
        for target in targets.values():
            await target.setup()
        for n in range(args.repeat):
            order = modes if n % 2 == 0 else modes[::-1]
            print(f"--- round {n + 1}/{args.repeat}, load average {loadavg()}")
            figures: dict[str, dict[str, Any]] = {mode: {"rates": {}} for mode in modes}
            for mode in order:
                floor, cpu = await targets[mode].floor()
                figures[mode].update(floor=floor, floor_cpu=cpu)
                print(f"[rate limit {mode:>3}] floor      GET /healthz       {floor:8.0f} req/s   server CPU {cpu:4.0f} us/request")
            for mode in order:
                peak, cpu = await targets[mode].peak()
                figures[mode].update(peak=peak, peak_cpu=cpu)
                ratio = peak / figures[mode]["floor"]
                print(f"[rate limit {mode:>3}] originate  closed loop        {peak:8.0f} msg/s   server CPU {cpu:4.0f} us/request  = {ratio:.2f} x floor")
            print(f"{'':16}{'offered':>8} {'accepted/s':>11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'events':>9} {'missing':>8}")
            for rate in args.rates:
                for mode in order:
                    got = await targets[mode].offered(rate)
                    figures[mode]["rates"][rate] = got[:4]
                    print(f"[rate limit {mode:>3}] {rate:>8} {got[0]:>11.0f} {got[1]:>8.1f} {got[2]:>8.1f} {got[3]:>8.1f} {got[4]:>9} {got[5]:>8}")
            for mode in modes:
                results[mode].append(figures[mode])
        for target in targets.values():
            await target.close()
    finally:
        for server in servers.values():
            server.stop()
    print(f"--- load average {loadavg()}")
    if len(modes) == 2 or args.repeat > 1:
        summarize(results, args.rates)


def summarize(results: dict[str, list[dict[str, Any]]], rates: list[int]) -> None:
    """Medians over the rounds of each mode; with both modes, on against off."""
    modes = list(results)
    rows: list[tuple[str, Any]] = [
        ("GET /healthz req/s", lambda r: r["floor"]),
        ("GET /healthz server CPU us/req", lambda r: r["floor_cpu"]),
        ("originate closed loop msg/s", lambda r: r["peak"]),
        ("originate server CPU us/req", lambda r: r["peak_cpu"]),
    ]
    for rate in rates:
        rows.append((f"{rate}/s offered: accepted/s", lambda r, k=rate: r["rates"][k][0]))
        for i, name in ((1, "p50"), (2, "p95"), (3, "p99")):
            rows.append((f"{rate}/s offered: {name} ms", lambda r, k=rate, i=i: r["rates"][k][i]))
    runs = len(results[modes[0]])
    header = f"{'median of ' + str(runs) + ' rounds':<32}" + "".join(f"{'rate limit ' + m:>16}" for m in modes)
    print(header + (f"{'change':>10}" if len(modes) == 2 else ""))
    for label, pick in rows:
        values = [statistics.median(pick(r) for r in results[m]) for m in modes]
        line = f"{label:<32}" + "".join(f"{v:>16.1f}" for v in values)
        if len(modes) == 2 and values[0]:
            line += f"{(values[1] - values[0]) / values[0] * 100:>+9.1f}%"
        print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=4, help="socket.io clients, each subscribed to every conversation")
    p.add_argument("--conversations", type=int, default=20)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32, help="connections for the closed-loop runs")
    p.add_argument("--workers", type=int, default=64, help="connections for the open-loop runs")
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[250, 500, 1000, 1500])
    p.add_argument("--rate-limit", choices=["off", "on", "both"], default="on",
                   help="per-key rate limiting in the server: off, on (counting, never refusing), or both side by side")
    p.add_argument("--repeat", type=int, default=1, help="rounds (medians are printed)")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
