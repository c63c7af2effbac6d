import { test } from "node:test";
import assert from "node:assert/strict";
import { AUTO_FORMAT, OPUS_DECODER_CONFIG, chooseFormat, formatLabel, probeOpus } from "../../auralis_ray/web/formats.js";

/** An AudioDecoder class whose isConfigSupported answers `answer` (or throws it, when it is an Error). */
function decoderClass(answer) {
  return class {
    static asked = [];
    static async isConfigSupported(config) {
      this.asked.push(config);
      if (answer instanceof Error) throw answer;
      return answer;
    }
  };
}

test("probeOpus asks about 48 kHz stereo Opus and believes only supported: true", async () => {
  const yes = decoderClass({ supported: true, config: OPUS_DECODER_CONFIG });
  assert.equal(await probeOpus(yes), true);
  assert.deepEqual(yes.asked, [{ codec: "opus", sampleRate: 48000, numberOfChannels: 2 }]);
  assert.equal(await probeOpus(decoderClass({ supported: false })), false);
  assert.equal(await probeOpus(decoderClass({})), false);
  assert.equal(await probeOpus(decoderClass(new TypeError("bad config"))), false);
  assert.equal(await probeOpus(undefined), false, "a browser without WebCodecs");
  assert.equal(await probeOpus(class {}), false, "an AudioDecoder without isConfigSupported");
});

test("the format asked for: Opus where it decodes, binary PCM otherwise; binary and json when asked", () => {
  for (const requested of [AUTO_FORMAT, undefined, null, "opus", "something"]) {
    assert.equal(chooseFormat(requested, true), "opus", String(requested));
    assert.equal(chooseFormat(requested, false), "binary", String(requested));
  }
  for (const requested of ["binary", "json"]) {
    assert.equal(chooseFormat(requested, true), requested);
    assert.equal(chooseFormat(requested, false), requested);
  }
});

test("the page names the format and its bitrate", () => {
  assert.equal(formatLabel("opus", { name: "opus", sample_rate: 48000, channels: 2, frame_ms: 20, bitrate: 128000 }), "Opus 128 kbit/s");
  assert.equal(formatLabel("opus", { bitrate: 96000 }), "Opus 96 kbit/s");
  assert.equal(formatLabel("opus", null), "Opus");
  assert.equal(formatLabel("binary"), "PCM 1411 kbit/s");
  assert.equal(formatLabel("json"), "PCM 1411 kbit/s (JSON)");
  assert.equal(formatLabel(undefined), "–");
});
