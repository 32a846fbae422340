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
