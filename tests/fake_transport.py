"""A transport with the methods that direct writes use, for the replica's adapters without sockets."""

from __future__ import annotations


class FakeTransport:
    """Keeps what is written; `backlog` is what the socket has not sent, `abort` closes it."""

    def __init__(self):
        self.written: list[bytes] = []
        self.backlog = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def writelines(self, pieces) -> None:
        """An HTTP stream's body writer: the pieces of one write, kept as one."""
        self.written.append(b"".join(bytes(piece) for piece in pieces))

    def get_extra_info(self, name: str, default=None):
        return default  # no socket behind it

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True
