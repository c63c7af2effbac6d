"""Compressed forms of a station's stream: Opus and MP3 encoders, Ogg pages, the `format=opus`
WebSocket frame and ICY metadata. Pure: no Ray, no sockets."""

from .compressed import CodecSettings, CompressedForms, CompressedStream, ogg_serial
from .encoders import (MP3_FRAME_SAMPLES, OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE, ChunkEncoder, CompressedChunk,
                       Mp3Encoder, OpusEncoder, TimelineGap)
from .icy import IcyDemuxer, IcyInterleaver, icy_metadata_block
from .ogg import OggOpusStream, OggPage, ogg_crc, page_packets, parse_pages
from .opus_frame import OpusFrame, decode_opus_frame, encode_opus_frame

__all__ = [
    "ChunkEncoder", "CodecSettings", "CompressedChunk", "CompressedForms", "CompressedStream", "IcyDemuxer",
    "IcyInterleaver", "MP3_FRAME_SAMPLES", "Mp3Encoder", "OPUS_FRAME_SAMPLES", "OPUS_SAMPLE_RATE", "OggOpusStream",
    "OggPage", "OpusEncoder", "OpusFrame", "TimelineGap", "decode_opus_frame", "encode_opus_frame",
    "icy_metadata_block", "ogg_crc", "ogg_serial", "page_packets", "parse_pages",
]
