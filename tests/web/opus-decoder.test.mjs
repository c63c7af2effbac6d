// OpusChunkDecoder with fake WebCodecs classes: what it configures, the packets and timestamps it
// decodes, the planar PCM it hands on, and what a reset or an error does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OpusChunkDecoder } from "../../auralis_ray/web/opus-decoder.js";

class FakeEncodedAudioChunk {
  constructor({ type, timestamp, duration, data }) {
    Object.assign(this, { type, timestamp, duration, data: Uint8Array.from(data) });
  }
}

/** Decoded audio as WebCodecs hands it out: f32-planar planes, copied out with copyTo. */
class FakeAudioData {
  constructor(timestamp, planes, sampleRate = 48000) {
    Object.assign(this, { timestamp, planes, sampleRate, numberOfFrames: planes[0].length, numberOfChannels: planes.length, closed: false });
  }

  copyTo(destination, { planeIndex, format }) {
    assert.equal(format, "f32-planar");
    destination.set(this.planes[planeIndex]);
  }

  close() {
    this.closed = true;
  }
}

/** An AudioDecoder that records its calls; the test plays its output and error callbacks. */
function fakeDecoderClass() {
  const made = [];
  class FakeAudioDecoder {
    constructor({ output, error }) {
      Object.assign(this, { output, error, state: "unconfigured", config: null, chunks: [] });
      made.push(this);
    }

    configure(config) {
      this.config = config;
      this.state = "configured";
    }

    decode(chunk) {
      if (this.state !== "configured") throw new DOMException("not configured", "InvalidStateError");
      this.chunks.push(chunk);
    }

    close() {
      this.state = "closed";
    }
  }
  return { FakeAudioDecoder, made };
}

function world() {
  const { FakeAudioDecoder, made } = fakeDecoderClass();
  const audio = [];
  const errors = [];
  const decoder = new OpusChunkDecoder({
    onAudio: (a) => audio.push(a),
    onError: (m) => errors.push(m),
    AudioDecoderClass: FakeAudioDecoder,
    EncodedAudioChunkClass: FakeEncodedAudioChunk,
  });
  return { decoder, made, audio, errors };
}

const packets = (n) => Array.from({ length: n }, (_, i) => Uint8Array.of(0xfc, i));

test("one decoder, configured for 48 kHz stereo Opus, takes every packet as a key chunk stamped from its chunk id", () => {
  const { decoder, made } = world();
  decoder.decode(40, packets(4));
  decoder.decode(41, packets(5));
  assert.equal(made.length, 1);
  assert.deepEqual(made[0].config, { codec: "opus", sampleRate: 48000, numberOfChannels: 2 });
  const chunks = made[0].chunks;
  assert.ok(chunks.every((c) => c.type === "key" && c.duration === 20_000));
  assert.deepEqual(chunks.map((c) => c.timestamp), [
    4_000_000, 4_020_000, 4_040_000, 4_060_000, 4_100_000, 4_120_000, 4_140_000, 4_160_000, 4_180_000,
  ]);
  assert.deepEqual(Array.from(chunks[4].data), [0xfc, 0], "chunk 41 starts with its own first packet");
});

test("decoded audio goes on as planes back to back, with its chunk id and rate; the AudioData is closed", () => {
  const { decoder, made, audio } = world();
  decoder.decode(7, packets(5));
  const left = Float32Array.from({ length: 960 }, (_, i) => i / 960);
  const right = left.map((v) => -v);
  const data = new FakeAudioData(720_000 + 40_000, [left, right]);
  made[0].output(data);
  assert.equal(audio.length, 1);
  const { chunkId, pcm, frames, rate } = audio[0];
  assert.deepEqual({ chunkId, frames, rate }, { chunkId: 7, frames: 960, rate: 48000 });
  assert.deepEqual(pcm.subarray(0, 960), left);
  assert.deepEqual(pcm.subarray(960), right);
  assert.ok(data.closed);
  const mono = new FakeAudioData(720_000, [left]);
  made[0].output(mono);
  assert.deepEqual(audio[1].pcm.subarray(960), left, "a mono frame plays on both sides");
});

test("after a reset the old decoder is closed, its late output dropped, and the next chunk opens a fresh one", () => {
  const { decoder, made, audio } = world();
  decoder.decode(1, packets(5));
  decoder.reset();
  assert.equal(made[0].state, "closed");
  const late = new FakeAudioData(100_000, [new Float32Array(960), new Float32Array(960)]);
  made[0].output(late);
  assert.equal(audio.length, 0);
  assert.ok(late.closed);
  decoder.decode(500, packets(5));
  assert.equal(made.length, 2);
  assert.equal(made[1].chunks[0].timestamp, 50_000_000);
  decoder.reset();
  decoder.reset(); // twice is fine
});

test("a decoder error is reported once; an old decoder's error after a reset is not", () => {
  const { decoder, made, errors } = world();
  decoder.decode(1, packets(5));
  made[0].error(new DOMException("corrupt packet", "EncodingError"));
  assert.deepEqual(errors, ["corrupt packet"]);
  made[0].error(new DOMException("again", "EncodingError"));
  assert.deepEqual(errors, ["corrupt packet"]);
  decoder.decode(2, packets(5));
  assert.equal(made.length, 2, "a fresh decoder after the failure");
});

test("a decoder that cannot be made or refuses a packet is an error, not an exception", () => {
  const errors = [];
  const broken = new OpusChunkDecoder({
    onAudio: () => assert.fail("no audio"),
    onError: (m) => errors.push(m),
    AudioDecoderClass: class {
      constructor() {
        throw new TypeError("no decoder here");
      }
    },
    EncodedAudioChunkClass: FakeEncodedAudioChunk,
  });
  broken.decode(1, packets(5));
  assert.deepEqual(errors, ["no decoder here"]);

  const w = world();
  w.decoder.decode(1, packets(1));
  w.made[0].state = "closed"; // closed by the browser under us
  w.decoder.decode(2, packets(5));
  assert.deepEqual(w.errors, ["not configured"]);
});
