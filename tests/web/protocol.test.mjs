import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CHUNK_BYTES,
  bufferControl,
  buildAudioUrl,
  clientReport,
  closeIsFinal,
  decodeBase64,
  chunkIdAtUs,
  int16ToPlanar,
  isValidClientId,
  opusPacketTimestampUs,
  parseBinaryFrame,
  parseJsonAudio,
  parseOpusFrame,
  ping,
  websocketBase,
} from "../../auralis_ray/web/protocol.js";
import { opusFrame } from "./frames.mjs";

test("audio URL carries only the parameters that are set", () => {
  assert.equal(buildAudioUrl("ws://h:1", "abc"), "ws://h:1/ws/audio/abc");
  assert.equal(
    buildAudioUrl("ws://h:1/", "web-1_2", { station: "night sky", tier: "stable", format: "binary", resumeFrom: 0 }),
    "ws://h:1/ws/audio/web-1_2?station=night+sky&buffer_tier=stable&format=binary&resume_from=0",
  );
  assert.throws(() => buildAudioUrl("ws://h", "bad id"), RangeError);
  assert.throws(() => buildAudioUrl("ws://h", "x".repeat(65)), RangeError);
  assert.ok(isValidClientId(`web-${"a".repeat(60)}`));
  assert.equal(websocketBase("https://example.org:8443/x?y"), "wss://example.org:8443");
  assert.equal(websocketBase("http://127.0.0.1:8000/"), "ws://127.0.0.1:8000");
});

function binaryFrame(chunkId, timestamp, samples) {
  const buf = new ArrayBuffer(16 + samples.length * 2);
  const v = new DataView(buf);
  v.setBigUint64(0, BigInt(chunkId), true);
  v.setFloat64(8, timestamp, true);
  samples.forEach((s, i) => v.setInt16(16 + 2 * i, s, true));
  return buf;
}

test("binary frame: uint64 LE id, float64 LE timestamp, int16 LE PCM", () => {
  const f = parseBinaryFrame(binaryFrame(2 ** 40 + 7, 1712345678.25, [1, -2, 32767, -32768]));
  assert.equal(f.chunkId, 2 ** 40 + 7);
  assert.equal(f.timestamp, 1712345678.25);
  assert.deepEqual(Array.from(f.pcm), [1, -2, 32767, -32768]);
  const full = parseBinaryFrame(binaryFrame(1, 0, new Array(CHUNK_BYTES / 2).fill(3)));
  assert.equal(full.pcm.length, 8820);
  assert.throws(() => parseBinaryFrame(new ArrayBuffer(10)), RangeError);
  assert.throws(() => parseBinaryFrame(new ArrayBuffer(16 + 6)), RangeError);
});

test("base64 decoding matches node's, with and without padding", () => {
  for (const n of [0, 1, 2, 3, 4, 5, 17640]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
    const b64 = Buffer.from(bytes).toString("base64");
    assert.deepEqual(decodeBase64(b64), bytes);
    assert.deepEqual(decodeBase64(b64.replace(/=+$/, "")), bytes);
  }
  assert.throws(() => decodeBase64("ab$d"), RangeError);
});

test("JSON audio message decodes to the same PCM as the binary frame", () => {
  const samples = [100, -100, 2000, -2000, 0, 1];
  const bytes = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => bytes.writeInt16LE(s, 2 * i));
  const a = parseJsonAudio({ type: "audio", chunk_id: 9, data: bytes.toString("base64"), timestamp: 5.5, buffer_depth: 0, current_tier: "normal" });
  assert.equal(a.chunkId, 9);
  assert.equal(a.tier, "normal");
  assert.deepEqual(Array.from(a.pcm), samples);
});

test("interleaved int16 -> planar float in [-1, 1)", () => {
  const planar = int16ToPlanar(Int16Array.from([0, 16384, -32768, 32767]));
  assert.deepEqual(Array.from(planar), [0, -1, 0.5, 32767 / 32768]);
});

test("client messages have the documented shapes", () => {
  const r = JSON.parse(clientReport({ bufferedMs: 987.6, underruns: 1, playedChunks: 42, nowMs: 1_700_000_000_500 }));
  assert.deepEqual(r, { type: "client_report", buffered_ms: 988, underruns: 1, played_chunks: 42, timestamp: 1_700_000_000.5 });
  assert.deepEqual(JSON.parse(bufferControl("stable", 2000)), { type: "buffer_control", requested_tier: "stable", timestamp: 2 });
  assert.throws(() => bufferControl("huge", 0), RangeError);
  assert.deepEqual(JSON.parse(ping(1500)), { type: "ping", timestamp: 1.5 });
  for (const m of [r]) assert.ok(JSON.stringify(m).length < 4096);
});

test("which closes end the session and which are retried", () => {
  assert.equal(closeIsFinal(1008), true);
  assert.equal(closeIsFinal(4000), true);
  for (const code of [1000, 1001, 1006, 1011, 1012, 1013]) assert.equal(closeIsFinal(code), false, String(code));
});

const hex = (s) => Uint8Array.from(s.match(/../g), (b) => parseInt(b, 16));

test("opus frame: the PCM frame's header, then each packet with a big-endian 2-byte length", () => {
  const packets = [Uint8Array.of(0xfc, 1, 2), Uint8Array.from({ length: 300 }, (_, i) => i & 255)];
  const f = parseOpusFrame(opusFrame(2 ** 33 + 5, 1712345678.5, packets));
  assert.equal(f.chunkId, 2 ** 33 + 5);
  assert.equal(f.timestamp, 1712345678.5);
  assert.deepEqual(f.packets, packets);
  // the first 37 bytes of opus_frame.encode_opus_frame(2**33 + 5, 1712345678.5, the same packets)
  const fromPython = hex("05000000020000000000a0931484d9410003fc0102012c");
  assert.deepEqual(new Uint8Array(opusFrame(2 ** 33 + 5, 1712345678.5, packets), 0, fromPython.length), fromPython);
});

test("opus frame: five 20 ms packets of a chunk, views into the frame, none for a header alone", () => {
  const five = Array.from({ length: 5 }, (_, i) => Uint8Array.from({ length: 40 + i }, () => i));
  const buf = opusFrame(7, 0, five);
  const f = parseOpusFrame(buf);
  assert.equal(f.packets.length, 5);
  assert.deepEqual(f.packets.map((p) => p.length), [40, 41, 42, 43, 44]);
  assert.ok(f.packets.every((p) => p.buffer === buf), "no copies");
  assert.deepEqual(parseOpusFrame(opusFrame(8, 0, [])).packets, []);
});

test("opus frame: a short header, a cut length, a packet that overruns or is empty are refused", () => {
  assert.throws(() => parseOpusFrame(new ArrayBuffer(15)), /shorter than its 16-byte header/);
  const whole = opusFrame(1, 0, [Uint8Array.of(1, 2, 3)]);
  assert.throws(() => parseOpusFrame(whole.slice(0, 17)), /ends inside a packet length/);
  assert.throws(() => parseOpusFrame(whole.slice(0, 20)), /packet of 3 bytes at byte 18/);
  const empty = opusFrame(1, 0, [Uint8Array.of(9)]);
  new DataView(empty).setUint16(16, 0, false);
  assert.throws(() => parseOpusFrame(empty), /packet of 0 bytes/);
});

test("packet timestamps follow chunk ids: chunk_id × 100 ms, plus 20 ms for each packet before", () => {
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => opusPacketTimestampUs(10, i)), [1_000_000, 1_020_000, 1_040_000, 1_060_000, 1_080_000]);
  assert.equal(opusPacketTimestampUs(2 ** 33, 4), 2 ** 33 * 100_000 + 80_000); // exact well past any stream's length
  assert.equal(chunkIdAtUs(opusPacketTimestampUs(12345, 4)), 12345);
  assert.equal(chunkIdAtUs(opusPacketTimestampUs(12345, 0) + 99_999), 12345);
});
