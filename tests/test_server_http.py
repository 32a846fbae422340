"""HTTP/1.1 framing of the served app (a response's head and body go out in one write)."""

from __future__ import annotations

import asyncio

import h11

from tests.conftest import LiveServer


async def test_keep_alive_responses_arrive_whole_and_in_order(live_server: LiveServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", live_server.port)
    conn = h11.Connection(h11.CLIENT)
    got: list[tuple[int, dict[bytes, bytes], bytes]] = []
    try:
        for path, rid in (("/healthz", "one"), ("/nope", "two"), ("/healthz", "three")):
            headers = [("Host", "t"), ("X-Request-Id", rid)]
            writer.write(conn.send(h11.Request(method="GET", target=path, headers=headers)))
            writer.write(conn.send(h11.EndOfMessage()))
            status, response_headers, body = 0, {}, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await asyncio.wait_for(reader.read(65536), 5))
                elif isinstance(event, h11.Response):
                    status, response_headers = event.status_code, dict(event.headers)
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            got.append((status, response_headers, body))
            conn.start_next_cycle()
    finally:
        writer.close()
    assert [status for status, _, _ in got] == [200, 404, 200]
    assert [headers[b"x-request-id"] for _, headers, _ in got] == [b"one", b"two", b"three"]
    for _, headers, body in got:
        assert int(headers[b"content-length"]) == len(body)
    assert b'"not_found"' in got[1][2]


def test_the_server_runs_on_uvloop_unless_turned_off(tmp_path) -> None:
    import uvloop

    from app.kernel.config import Settings, load_settings
    from app.serving.server import run

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert issubclass(run(loop_type(), Settings(data_dir=tmp_path)), uvloop.Loop)
    off = load_settings({"SWITCHBOARD_UVLOOP": "0", "SWITCHBOARD_DATA_DIR": str(tmp_path)})
    assert off.uvloop is False
    assert not issubclass(run(loop_type(), off), uvloop.Loop)


def test_a_serving_process_freezes_its_startup_heap(tmp_path) -> None:
    """Run in a child process: freezing is for a process that only serves."""
    import subprocess
    import sys

    script = (
        "import asyncio, gc, pathlib, socket\n"
        "from app.kernel.config import Settings\n"
        "from app.serving.server import serve\n"
        "async def main():\n"
        "    stop = asyncio.Event()\n"
        "    sock = socket.socket(); sock.bind(('127.0.0.1', 0)); sock.listen(8)\n"
        f"    settings = Settings(data_dir=pathlib.Path({str(tmp_path)!r}))\n"
        "    task = asyncio.create_task(serve(settings, sock=sock, shutdown_trigger=stop.wait, freeze_gc=True))\n"
        "    for _ in range(200):\n"
        "        if gc.get_freeze_count():\n"
        "            break\n"
        "        await asyncio.sleep(0.05)\n"
        "    print(gc.get_freeze_count())\n"
        "    stop.set(); await task\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) > 10_000
