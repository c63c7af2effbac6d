// The WebSocket audio formats the player can ask for, which one it asks for, and how the page names
// them. Pure, except probeOpus, which asks the WebCodecs AudioDecoder class it is given.
//
//   opus    Opus packets (48 kHz stereo, 20 ms), decoded by WebCodecs in the stream worker
//   binary  16-bit PCM in binary frames
//   json    the same PCM, base64 inside JSON text frames (for paths that do not pass binary frames)

import { CHANNELS, OPUS_SAMPLE_RATE, SAMPLE_RATE } from "./protocol.js";

export const Format = Object.freeze({ OPUS: "opus", BINARY: "binary", JSON: "json" });
/** Let the player choose: Opus where the browser decodes it, binary PCM otherwise. */
export const AUTO_FORMAT = "auto";

/** What the stream worker configures its AudioDecoder with (and asks isConfigSupported about). */
export const OPUS_DECODER_CONFIG = Object.freeze({ codec: "opus", sampleRate: OPUS_SAMPLE_RATE, numberOfChannels: CHANNELS });

export const PCM_BITRATE = SAMPLE_RATE * CHANNELS * 16; // 1,411,200 bit/s

/** Whether `AudioDecoderClass` (WebCodecs' AudioDecoder, or undefined where there is none) decodes the stream's Opus. */
export async function probeOpus(AudioDecoderClass) {
  if (typeof AudioDecoderClass?.isConfigSupported !== "function") return false;
  try {
    const answer = await AudioDecoderClass.isConfigSupported({ ...OPUS_DECODER_CONFIG });
    return answer?.supported === true;
  } catch {
    return false; // a browser that rejects the question does not decode it either
  }
}

/**
 * The format to ask the server for.
 * @param {string|null|undefined} requested "auto" (or nothing), "opus", "binary" or "json"
 * @param {boolean} opusDecodes what probeOpus found
 */
export function chooseFormat(requested, opusDecodes) {
  if (requested === Format.BINARY || requested === Format.JSON) return requested;
  return opusDecodes ? Format.OPUS : Format.BINARY;
}

/**
 * The format and bitrate as the page shows them: "Opus 128 kbit/s", "PCM 1411 kbit/s",
 * "PCM 1411 kbit/s (JSON)". `codec` is connection_established's `codec` ({name, bitrate}, bit/s).
 */
export function formatLabel(format, codec = null) {
  switch (format) {
    case Format.OPUS:
      return codec?.bitrate > 0 ? `Opus ${kbit(codec.bitrate)} kbit/s` : "Opus";
    case Format.BINARY:
      return `PCM ${kbit(PCM_BITRATE)} kbit/s`;
    case Format.JSON:
      return `PCM ${kbit(PCM_BITRATE)} kbit/s (JSON)`;
    default:
      return "–";
  }
}

function kbit(bitsPerSecond) {
  return Math.floor(bitsPerSecond / 1000);
}
