"""The `/ws/audio/{client_id}` endpoint: a raw ASGI adapter around ClientSession.

It only moves frames: the session decides what to send; this module sends it, feeds client
messages back in, and closes the socket when the session says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import parse_qs

from ..core_settings import session_settings
from ..stream import protocol as p
from ..stream.adaptive import TIERS
from ..stream.client import ClientSession
from .direct import DirectWriter, find_transport
from .hub import ListenerHub
from .lifecycle import ReplicaLifecycle, Refusal
from .listener import Listener, report_failures

log = logging.getLogger(__name__)


class HandshakeRefused(Exception):
    """A connection the endpoint refuses: the error to send and the close code."""

    def __init__(self, code: p.ErrorCode, message: str, close_code: int):
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code


def parse_query(query_string: bytes, default_tier: str) -> dict:
    """Query parameters of the audio endpoint, validated; raises HandshakeRefused."""
    raw = {k: v[-1] for k, v in parse_qs(query_string.decode("latin-1"), keep_blank_values=True).items()}
    tier = raw.get("buffer_tier", default_tier)
    fmt = raw.get("format", "json")
    if tier not in TIERS:
        raise HandshakeRefused(p.ErrorCode.INVALID_MESSAGE, f"buffer_tier must be one of {', '.join(TIERS)}",
                               p.CloseCode.POLICY_VIOLATION)
    if fmt not in p.FORMATS:
        raise HandshakeRefused(p.ErrorCode.INVALID_MESSAGE, f"format must be one of {', '.join(p.FORMATS)}",
                               p.CloseCode.POLICY_VIOLATION)
    resume = raw.get("resume_from")
    if resume is not None:
        try:
            resume = int(resume)
            if resume < -1:
                raise ValueError
        except ValueError:
            raise HandshakeRefused(p.ErrorCode.INVALID_MESSAGE, "resume_from must be a chunk_id (integer >= -1)",
                                   p.CloseCode.POLICY_VIOLATION) from None
    return {"station": raw.get("station", "default"), "tier": tier, "fmt": fmt, "resume_from": resume}


# how a refused WebSocket listener is closed: reconnect elsewhere now (1012), or later (1013)
CLOSE_CODES = {Refusal.DRAINING: p.CloseCode.SERVICE_RESTART, Refusal.FULL: p.CloseCode.TRY_AGAIN_LATER}


def check_room(lifecycle: ReplicaLifecycle, client_id: str) -> None:
    """Raise HandshakeRefused while the replica drains (1012) or is full (1013)."""
    refusal = lifecycle.refusal(client_id)
    if refusal is not None:
        raise HandshakeRefused(p.ErrorCode.SERVER_OVERLOAD, refusal.value, CLOSE_CODES[refusal])


class AudioEndpoint:
    """ASGI app for one route; the replica is looked up at call time."""

    def __init__(self, get_replica, server_version: str):
        self.get_replica = get_replica
        self.server_version = server_version

    async def __call__(self, scope, receive, send) -> None:
        replica = self.get_replica()
        hub: ListenerHub = replica.hub
        client_id = scope.get("path_params", {}).get("client_id", "")
        if not p.is_valid_client_id(client_id):
            await send({"type": "websocket.close", "code": p.CloseCode.POLICY_VIOLATION})  # 403 at handshake
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        accept = {"type": "websocket.accept"}
        if p.SUBPROTOCOL in scope.get("subprotocols", []):
            accept["subprotocol"] = p.SUBPROTOCOL
        await send(accept)
        try:
            query = parse_query(scope.get("query_string", b""), hub.config.buffer.initial_tier)
            feed = hub.feed(query["station"])
            if feed is None:
                raise HandshakeRefused(p.ErrorCode.UNKNOWN_STATION, f"unknown station {query['station'][:64]!r}",
                                       p.CloseCode.POLICY_VIOLATION)
            check_room(replica.lifecycle, client_id)
            fmt = query["fmt"]
            if not await feed.wait_for_audio(2.0, compressed=fmt == p.OPUS_FORMAT, resume_from=query["resume_from"],
                                             burst_chunks=TIERS[query["tier"]].target_ms // p.CHUNK_DURATION_MS):
                raise HandshakeRefused(p.ErrorCode.SERVER_OVERLOAD, "the station has no audio yet; try again shortly",
                                       p.CloseCode.TRY_AGAIN_LATER)
            check_room(replica.lifecycle, client_id)  # again: a drain may have begun, or others come in, meanwhile
        except HandshakeRefused as refused:
            hub.metrics.inc_websocket_errors(refused.code.value)
            await send({"type": "websocket.send", "text": p.dumps(p.error(refused.code, refused.message,
                                                                             p.Severity.ERROR, time.time()))})
            await send({"type": "websocket.close", "code": refused.close_code})
            return
        codec = p.opus_codec(hub.config.encoding.opus_bitrate_kbps * 1000) if fmt == p.OPUS_FORMAT else None
        session = ClientSession(
            client_id=client_id, station=feed.name, fmt=fmt, ring=feed.ring,
            settings=session_settings(hub.config), now=time.time(),
            server_version=self.server_version, tier=query["tier"], resume_from=query["resume_from"], codec=codec,
        )
        session.open(time.time())
        if feed.now_playing_message is not None:
            session.queue_now_playing(feed.now_playing_message)
        conc = hub.config.concurrency
        transport = find_transport(send) if conc.enable_direct_writes else None
        writer = None if transport is None else DirectWriter(transport, conc.send_backlog_max_bytes,
                                                             conc.websocket_send_buffer_bytes)
        listener = hub.register(feed, session, writer)
        session.pump(time.time())
        sender = listener.start_sender(self._send_loop(hub, listener, send))
        receiver = asyncio.create_task(self._receive_loop(hub, listener, receive))
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # forget the listener first: Serve may cancel this request again (it saw the disconnect too)
            hub.unregister(feed, listener)
            session.disconnect()
            for task in (sender, receiver):
                task.cancel()
            report_failures(await asyncio.gather(sender, receiver, return_exceptions=True), client_id, hub.metrics)

    async def _send_loop(self, hub: ListenerHub, listener: Listener, send) -> None:
        """Sends what the tick did not (the opening burst, replies, the close); with direct writes the
        tick itself writes every chunk."""
        session = listener.session
        while True:
            await listener.wake.wait()
            listener.wake.clear()
            if listener.writer is not None:
                listener.flush(time.time())
            elif not await self._send_frames(hub, session, send):
                return
            if session.closing is not None:
                try:
                    await send({"type": "websocket.close", "code": session.closing.code,
                                "reason": session.closing.reason[:120]})
                except Exception:
                    pass
                return

    @staticmethod
    async def _send_frames(hub: ListenerHub, session: ClientSession, send) -> bool:
        """Through the ASGI `send`; False when the socket went away."""
        frames = session.take_frames(time.time())
        if not frames:
            return True
        session.socket_busy(time.time())
        try:
            for frame in frames:
                if isinstance(frame, str):
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except Exception as error:  # the socket went away mid-send
            hub.metrics.inc_websocket_errors(type(error).__name__)
            return False
        session.sent(frames)
        return True

    async def _receive_loop(self, hub: ListenerHub, listener: Listener, receive) -> None:
        session = listener.session
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            received = session.on_message(
                message.get("text") if message.get("text") is not None else message.get("bytes"), time.time())
            if received.underruns:
                hub.metrics.inc_buffer_underruns(session.station, received.underruns)
            if received.invalid:
                hub.metrics.inc_websocket_errors("invalid_message")
            listener.wake.set()  # the answer, or the close
