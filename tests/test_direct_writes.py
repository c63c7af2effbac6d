"""Direct writes (serve/direct.py) against a real uvicorn server and real WebSocket clients."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn
import websockets

from auralis_ray.serve.direct import DirectWriter, find_transport
from auralis_ray.serve.local import free_port
from auralis_ray.stream.pool import AudioChunkPool, ws_frame

pytestmark = pytest.mark.realtime

CHUNK = AudioChunkPool().encode_chunk(4, 1.5, bytes(17640))


def wrapped(send):
    """A `send` behind two closures, the way Serve hands it to the ingress."""
    async def with_request_id(message):
        await send(message)

    async def send_user_message(message):
        await with_request_id(message)
    return send_user_message


async def serve(app):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task, f"ws://127.0.0.1:{port}/"


async def test_frames_written_to_the_transport_arrive_as_websocket_messages():
    found = {}

    async def app(scope, receive, send):
        await receive()
        send = wrapped(send)
        await send({"type": "websocket.accept"})
        transport = find_transport(send)
        found["transport"] = transport
        writer = DirectWriter(transport, 65536, send_buffer_bytes=131072)
        writer.write([ws_frame('{"type":"hello"}'), CHUNK.websocket_frame("binary", 0, "normal"),
                      CHUNK.websocket_frame("json", 2, "stable")])
        await receive()  # until the client goes

    server, task, url = await serve(app)
    try:
        async with websockets.connect(url) as ws:  # offers permessage-deflate: our frames stay uncompressed
            got = [await ws.recv() for _ in range(3)]
    finally:
        server.should_exit = True
        await task
    assert found["transport"] is not None
    assert got == ['{"type":"hello"}', CHUNK.binary, CHUNK.json_frame(2, "stable")]


async def test_a_send_without_a_uvicorn_protocol_behind_it_has_no_transport():
    async def plain(message):
        return None

    assert find_transport(plain) is None
    assert find_transport(wrapped(plain)) is None


async def test_backlog_of_a_listener_that_never_reads():
    state = {}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        writer = DirectWriter(find_transport(send), 65536, send_buffer_bytes=32768)
        state["send_buffer"] = writer.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        frame = CHUNK.websocket_frame("binary", 0, "normal")
        for _ in range(2000):  # 35 MB: far past what the kernel buffers take
            if not writer.has_room():
                break
            writer.write([frame])
            await asyncio.sleep(0)
        state["room"] = writer.has_room()
        state["backlog"] = writer.backlog
        writer.abort()
        state["closed"] = writer.closed

    server, task, url = await serve(app)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))))
    try:
        async with websockets.connect(url, sock=sock, max_queue=1, close_timeout=0.5):
            for _ in range(100):
                if "closed" in state:
                    break
                await asyncio.sleep(0.1)
    finally:
        server.should_exit = True
        await task
    assert state["room"] is False and state["backlog"] > 65536 and state["closed"]
    assert state["send_buffer"] == 2 * 32768  # held (Linux doubles what is asked), not left to grow to MBs
