import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CHUNK_BYTES,
  bufferControl,
  buildAudioUrl,
  clientReport,
  closeIsFinal,
  decodeBase64,
  int16ToPlanar,
  isValidClientId,
  parseBinaryFrame,
  parseJsonAudio,
  ping,
  websocketBase,
} from "../../auralis_ray/web/protocol.js";

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
