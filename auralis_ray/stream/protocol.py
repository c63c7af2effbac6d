"""The listener wire contract (docs/PROTOCOL.md): constants, message builders and parsing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

PROTOCOL_VERSION = "v1"
SUBPROTOCOL = "auralis-v1"
SAMPLE_RATE = 44_100
CHANNELS = 2
CHUNK_DURATION_MS = 100
CHUNK_SECONDS = CHUNK_DURATION_MS / 1000
FRAMES_PER_CHUNK = SAMPLE_RATE * CHUNK_DURATION_MS // 1000  # 4,410
SAMPLES_PER_CHUNK = FRAMES_PER_CHUNK * CHANNELS  # 8,820
CHUNK_BYTES = SAMPLES_PER_CHUNK * 2  # 17,640
BINARY_HEADER_BYTES = 16

CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
FORMATS = ("json", "binary", "opus")
OPUS_FORMAT = "opus"  # one binary frame per chunk holding its Opus packets (stream/codecs/opus_frame.py)
# the `opus` format's codec, as the station's encoders produce it (stream/codecs/encoders.py)
OPUS_SAMPLE_RATE = 48_000
OPUS_FRAME_MS = 20


class CloseCode:
    """WebSocket close codes the server uses (docs/PROTOCOL.md, "Close codes")."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    REPLACED = 4000


class ErrorCode(str, Enum):
    """`error_code` of an `error` message."""

    BUFFER_OVERRUN = "BUFFER_OVERRUN"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    PERSISTENT_UNDERRUNS = "PERSISTENT_UNDERRUNS"
    SERVER_OVERLOAD = "SERVER_OVERLOAD"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    UNKNOWN_STATION = "UNKNOWN_STATION"


class Severity(str, Enum):
    """`severity` of an `error` message."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class ProtocolError(Exception):
    """A client message or request that breaks the contract; the edge maps it to a wire error."""

    def __init__(self, code: ErrorCode, message: str, severity: Severity = Severity.WARNING):
        super().__init__(message)
        self.code = code
        self.message = message
        self.severity = severity


def is_valid_client_id(client_id: str) -> bool:
    return CLIENT_ID_PATTERN.fullmatch(client_id) is not None


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


# ---- server -> client messages -------------------------------------------------------------


def opus_codec(bitrate: int) -> dict[str, Any]:
    """The `codec` of `connection_established` for the `opus` format (`bitrate` in bit/s)."""
    return {"name": "opus", "sample_rate": OPUS_SAMPLE_RATE, "channels": CHANNELS, "frame_ms": OPUS_FRAME_MS,
            "bitrate": bitrate}


def connection_established(
    client_id: str, station: str, now: float, server_version: str, tier: str, target_ms: int, fmt: str,
    codec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The first message; `format` and (for a compressed format) `codec` also stand at the top level."""
    message = {
        "type": "connection_established",
        "client_id": client_id,
        "station": station,
        "server_time": now,
        "server_version": server_version,
        "format": fmt,
        "buffer_config": {
            "initial_tier": tier,
            "target_buffer_ms": target_ms,
            "chunk_duration_ms": CHUNK_DURATION_MS,
            "samples_per_chunk": SAMPLES_PER_CHUNK,
            "sample_rate": SAMPLE_RATE,
            "channels": CHANNELS,
            "format": fmt,
        },
    }
    if codec is not None:
        message["codec"] = codec
    return message


def now_playing(playing: dict[str, Any]) -> dict[str, Any]:
    """What a station plays, as its station actor reports it (`StationCore.now_playing_message`)."""
    return {"type": "now_playing", **playing}


def error(code: ErrorCode, message: str, severity: Severity, now: float) -> dict[str, Any]:
    return {
        "type": "error",
        "error_code": code.value,
        "error_message": message,
        "severity": severity.value,
        "timestamp": now,
    }


def buffer_control_ack(previous_tier: str, new_tier: str, now: float) -> dict[str, Any]:
    return {"type": "buffer_control_ack", "previous_tier": previous_tier, "new_tier": new_tier, "timestamp": now}


def pong(now: float, client_timestamp: float) -> dict[str, Any]:
    return {"type": "pong", "timestamp": now, "client_timestamp": client_timestamp}


def shutdown_warning(reason: str, drain_period_sec: float, now: float) -> dict[str, Any]:
    return {"type": "shutdown_warning", "reason": reason, "drain_period_sec": drain_period_sec, "timestamp": now}


# ---- client -> server messages -------------------------------------------------------------


@dataclass(frozen=True)
class BufferControl:
    """A client's `buffer_control`: it asks for a tier."""

    requested_tier: str
    timestamp: float


@dataclass(frozen=True)
class ClientReport:
    """A client's `client_report`: what its own player sees."""

    buffered_ms: float
    underruns: int
    played_chunks: int
    timestamp: float


@dataclass(frozen=True)
class Ping:
    """A client's `ping`, answered with `pong`."""

    timestamp: float


ClientMessage = BufferControl | ClientReport | Ping

_NUMBER = (int, float)


# the largest magnitude a number in a client message may have (JavaScript's safe integers)
LARGEST_CLIENT_NUMBER = 2**53


def _field(data: dict, name: str, kinds: tuple, minimum: float | None = None):
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' is missing or has the wrong type")
    if not -LARGEST_CLIENT_NUMBER <= value <= LARGEST_CLIENT_NUMBER:  # NaN fails this too
        raise ProtocolError(ErrorCode.INVALID_MESSAGE,
                            f"field '{name}' must be a finite number of magnitude at most 2**53")
    if minimum is not None and value < minimum:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"field '{name}' must be >= {minimum}")
    return value


def parse_client_message(raw: str | bytes | None, max_bytes: int, tiers: tuple[str, ...]) -> ClientMessage:
    """Parse one client frame; raise ProtocolError(INVALID_MESSAGE) for anything off-contract."""
    if raw is None:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "empty message")
    if isinstance(raw, (bytes, bytearray)):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "binary frames from clients are not accepted")
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"message larger than {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "message must be a JSON object")
    kind = data.get("type")
    if kind == "ping":
        return Ping(timestamp=float(_field(data, "timestamp", _NUMBER)))
    if kind == "buffer_control":
        tier = data.get("requested_tier")
        if tier not in tiers:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"requested_tier must be one of {', '.join(tiers)}")
        return BufferControl(requested_tier=tier, timestamp=float(_field(data, "timestamp", _NUMBER)))
    if kind == "client_report":
        return ClientReport(
            buffered_ms=float(_field(data, "buffered_ms", _NUMBER, 0)),
            underruns=int(_field(data, "underruns", (int,), 0)),
            played_chunks=int(_field(data, "played_chunks", (int,), 0)),
            timestamp=float(_field(data, "timestamp", _NUMBER)),
        )
    raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"unknown message type {str(kind)[:40]!r}")
