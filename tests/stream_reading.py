"""Reading an HTTP audio stream for a while, for the tests that listen to the `/listen/` routes."""

from __future__ import annotations

import time

import httpx


async def read_for(response: httpx.Response, seconds: float) -> bytes:
    """What the stream brings in `seconds`."""
    data = bytearray()
    deadline = time.monotonic() + seconds
    async for piece in response.aiter_raw():
        data += piece
        if time.monotonic() >= deadline:
            break
    return bytes(data)
