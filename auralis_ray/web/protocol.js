// The Auralis listener protocol (docs/PROTOCOL.md), client side. Pure helpers: URL building,
// frame decoding, client message builders, and what a close code means for reconnecting.

export const SAMPLE_RATE = 44100;
export const CHANNELS = 2;
export const CHUNK_MS = 100;
export const FRAMES_PER_CHUNK = 4410;
export const CHUNK_BYTES = FRAMES_PER_CHUNK * CHANNELS * 2; // 17,640
export const BINARY_HEADER_BYTES = 16;
export const OPUS_SAMPLE_RATE = 48000;
export const OPUS_LENGTH_BYTES = 2; // each Opus packet's big-endian length in a format=opus frame
export const OPUS_PACKET_US = 20000; // each Opus packet holds 20 ms
const CHUNK_US = CHUNK_MS * 1000;
export const SUBPROTOCOL = "auralis-v1";

/** Tier name -> target client buffer (ms). */
export const TIERS = Object.freeze({ minimal: 500, normal: 1000, stable: 2000, defensive: 3000 });
export const TIER_ORDER = Object.freeze(["minimal", "normal", "stable", "defensive"]);

const CLIENT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidClientId(id) {
  return typeof id === "string" && CLIENT_ID_RE.test(id);
}

/** `http(s)://host[:port]` (or a page URL) -> `ws(s)://host[:port]` */
export function websocketBase(httpUrl) {
  const u = new URL(httpUrl);
  return `${u.protocol === "https:" ? "wss:" : "ws:"}//${u.host}`;
}

/**
 * `ws://HOST:PORT/ws/audio/{client_id}?station=..&buffer_tier=..&format=..&resume_from=..`
 * Only parameters that are set are sent.
 */
export function buildAudioUrl(wsBase, clientId, { station, tier, format, resumeFrom } = {}) {
  if (!isValidClientId(clientId)) throw new RangeError(`invalid client_id ${JSON.stringify(clientId)}`);
  const q = new URLSearchParams();
  if (station) q.set("station", station);
  if (tier) q.set("buffer_tier", tier);
  if (format) q.set("format", format);
  if (resumeFrom !== null && resumeFrom !== undefined) q.set("resume_from", String(resumeFrom));
  const qs = q.toString();
  return `${wsBase.replace(/\/+$/, "")}/ws/audio/${clientId}${qs ? `?${qs}` : ""}`;
}

/** The 16-byte header of every binary audio frame: uint64 LE chunk_id, float64 LE timestamp. */
function readFrameHeader(view) {
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  return { chunkId: hi * 2 ** 32 + lo, timestamp: view.getFloat64(8, true) };
}

/**
 * Binary audio frame (format `binary`): the header, then 17,640 bytes of PCM.
 * @param {ArrayBuffer} buf
 * @returns {{chunkId: number, timestamp: number, pcm: Int16Array}}
 */
export function parseBinaryFrame(buf) {
  if (buf.byteLength < BINARY_HEADER_BYTES + 4 || (buf.byteLength - BINARY_HEADER_BYTES) % 4 !== 0) {
    throw new RangeError(`binary frame of ${buf.byteLength} bytes is not header + stereo int16 PCM`);
  }
  return { ...readFrameHeader(new DataView(buf)), pcm: int16View(buf, BINARY_HEADER_BYTES) };
}

/**
 * Opus audio frame (format `opus`): the header, then the chunk's Opus packets, each a uint16 BE
 * length and that many bytes. The packets are views into `buf`, not copies.
 * @param {ArrayBuffer} buf
 * @returns {{chunkId: number, timestamp: number, packets: Uint8Array[]}}
 */
export function parseOpusFrame(buf) {
  if (buf.byteLength < BINARY_HEADER_BYTES) {
    throw new RangeError(`opus frame of ${buf.byteLength} bytes is shorter than its ${BINARY_HEADER_BYTES}-byte header`);
  }
  const view = new DataView(buf);
  const packets = [];
  let offset = BINARY_HEADER_BYTES;
  while (offset < buf.byteLength) {
    if (offset + OPUS_LENGTH_BYTES > buf.byteLength) throw new RangeError("opus frame ends inside a packet length");
    const size = view.getUint16(offset, false);
    offset += OPUS_LENGTH_BYTES;
    if (size === 0 || offset + size > buf.byteLength) {
      throw new RangeError(`opus frame holds a packet of ${size} bytes at byte ${offset}, which does not fit`);
    }
    packets.push(new Uint8Array(buf, offset, size));
    offset += size;
  }
  return { ...readFrameHeader(view), packets };
}

/**
 * The decoder timestamp (µs) of packet `index` of chunk `chunkId`: chunk_id × 100 ms plus 20 ms for
 * each packet before it, so the timeline follows chunk ids across a gap or a resume.
 */
export function opusPacketTimestampUs(chunkId, index) {
  return chunkId * CHUNK_US + index * OPUS_PACKET_US;
}

/** The chunk a decoder timestamp (µs) belongs to. */
export function chunkIdAtUs(timestampUs) {
  return Math.floor(timestampUs / CHUNK_US);
}

/** Little-endian int16 samples of `buf` from `byteOffset` (every browser and node host is little-endian). */
function int16View(buf, byteOffset) {
  return new Int16Array(buf, byteOffset, (buf.byteLength - byteOffset) >> 1);
}

const B64 = (() => {
  const table = new Uint8Array(128).fill(255);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
})();

/** Standard base64 (with or without padding) -> bytes. Throws on characters outside the alphabet. */
export function decodeBase64(str) {
  let len = str.length;
  while (len > 0 && str.charCodeAt(len - 1) === 61 /* = */) len--;
  if (len % 4 === 1) throw new RangeError("truncated base64");
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let o = 0;
  let i = 0;
  const sextet = (k) => {
    const code = str.charCodeAt(k);
    const v = code < 128 ? B64[code] : 255;
    if (v === 255) throw new RangeError(`invalid base64 character at ${k}`);
    return v;
  };
  for (; i + 4 <= len; i += 4) {
    const n = (sextet(i) << 18) | (sextet(i + 1) << 12) | (sextet(i + 2) << 6) | sextet(i + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  const rest = len - i;
  if (rest === 2) {
    const n = (sextet(i) << 18) | (sextet(i + 1) << 12);
    out[o++] = n >> 16;
  } else if (rest === 3) {
    const n = (sextet(i) << 18) | (sextet(i + 1) << 12) | (sextet(i + 2) << 6);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
  }
  return out;
}

/** JSON `audio` message -> the same shape as a binary frame (plus the server's tier, if given). */
export function parseJsonAudio(msg) {
  const bytes = decodeBase64(msg.data);
  if (bytes.length < 4 || bytes.length % 4 !== 0) throw new RangeError(`audio data of ${bytes.length} bytes`);
  return {
    chunkId: msg.chunk_id,
    timestamp: msg.timestamp,
    pcm: int16View(bytes.buffer, 0),
    tier: msg.current_tier,
    behind: msg.buffer_depth,
  };
}

/**
 * Interleaved int16 stereo -> one Float32Array holding the planes back to back [L..., R...],
 * ready to transfer to the worklet.
 */
export function int16ToPlanar(pcm, channels = CHANNELS) {
  const frames = Math.floor(pcm.length / channels);
  const out = new Float32Array(frames * channels);
  const scale = 1 / 32768;
  for (let c = 0; c < channels; c++) {
    const base = c * frames;
    for (let f = 0, s = c; f < frames; f++, s += channels) out[base + f] = pcm[s] * scale;
  }
  return out;
}

const nowSec = (nowMs) => nowMs / 1000;

export function clientReport({ bufferedMs, underruns, playedChunks, nowMs }) {
  return JSON.stringify({
    type: "client_report",
    buffered_ms: Math.max(0, Math.round(bufferedMs)),
    underruns,
    played_chunks: playedChunks,
    timestamp: nowSec(nowMs),
  });
}

export function bufferControl(tier, nowMs) {
  if (!(tier in TIERS)) throw new RangeError(`unknown tier ${tier}`);
  return JSON.stringify({ type: "buffer_control", requested_tier: tier, timestamp: nowSec(nowMs) });
}

export function ping(nowMs) {
  return JSON.stringify({ type: "ping", timestamp: nowSec(nowMs) });
}

/**
 * What a close means for the client. 1008: refused (bad id, unknown station) and 4000: replaced by a
 * newer connection with our id are final; everything else (1012 restart, 1013 overload, 1001,
 * 1006 abnormal, ...) is worth a reconnect with backoff.
 */
export function closeIsFinal(code) {
  return code === 1008 || code === 4000;
}
