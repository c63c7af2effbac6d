"""Kernel arrival stamps of the load generator's sockets (Linux SO_TIMESTAMPNS)."""

import asyncio
import socket
import struct
import time

import pytest

from auralis_ray.tools.loadtest.stamped import KERNEL_STAMPS, SO_TIMESTAMPNS, StampedSocketTransport, kernel_stamp
from waiting import wait_until_async

pytestmark = pytest.mark.realtime


def test_kernel_stamp_reads_a_timespec_and_ignores_other_messages():
    payload = struct.pack("@qq", 1_700_000_000, 250_000_000)
    assert kernel_stamp([(socket.SOL_SOCKET, SO_TIMESTAMPNS, payload)]) == pytest.approx(1_700_000_000.25)
    assert kernel_stamp([(socket.IPPROTO_TCP, 1, payload)]) is None
    assert kernel_stamp([]) is None


def loopback_bytes_are_stamped() -> bool:
    """Whether a byte sent over loopback TCP now arrives with a kernel stamp."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as sender:
            receiver, _ = server.accept()
            with receiver:
                receiver.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                sender.sendall(b"?")
                _, ancillary, _, _ = receiver.recvmsg(1, socket.CMSG_SPACE(16))
                return kernel_stamp(ancillary) is not None


class Recorder:
    def __init__(self):
        self.reads: list[tuple[bytes, float, float]] = []
        self.lost = asyncio.get_running_loop().create_future()
        self.eof = False

    def connection_made(self, transport):
        self.transport = transport

    def receive(self, data, arrived_at, read_at):
        self.reads.append((data, arrived_at, read_at))

    def eof_received(self):
        self.eof = True

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.mark.skipif(not KERNEL_STAMPS, reason="kernel receive stamps are Linux-only")
@pytest.mark.timeout(20)
async def test_stamped_transport_stamps_arrival_before_a_late_read_and_sees_eof():
    # the kernel turns receive stamping on shortly after the first socket asks for it
    keep_on = socket.socket()
    keep_on.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    await wait_until_async(loopback_bytes_are_stamped, 5.0, "the kernel to stamp received bytes")
    received = asyncio.Queue()

    async def serve(reader, writer):
        await reader.readexactly(5)
        received.put_nowait(True)
        writer.write(b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    recorder = Recorder()
    transport = await StampedSocketTransport.connect("127.0.0.1", port, recorder)
    transport.write(b"hello")
    await received.get()
    time.sleep(0.03)  # block the loop: the bytes arrive, the read comes 30 ms later
    await asyncio.wait_for(recorder.lost, 5)
    data = b"".join(d for d, _, _ in recorder.reads)
    assert data == b"x" * 1000 and recorder.eof
    _, arrived_at, read_at = recorder.reads[0]
    assert read_at - arrived_at >= 0.025, "the stamp is the arrival, not the read"
    assert transport.is_closing()
    keep_on.close()
    server.close()
    await server.wait_closed()
