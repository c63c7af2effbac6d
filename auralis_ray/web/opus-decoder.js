// OpusChunkDecoder: one station's Opus packets through a WebCodecs AudioDecoder, out as planar float
// PCM for the worklet. The stream worker owns one; the WebCodecs classes are arguments, so tests
// drive it with fakes.
//
// Each packet's timestamp comes from its chunk_id (protocol.js opusPacketTimestampUs), so the
// decoder's timeline follows the stream's across a gap or a resume, as the PCM path does. The decoder
// keeps its state from one chunk to the next; reset() throws it away (another station, a stop), and
// outputs of a decoder that was reset or closed are dropped.

import { OPUS_PACKET_US, chunkIdAtUs, opusPacketTimestampUs } from "./protocol.js";
import { OPUS_DECODER_CONFIG } from "./formats.js";

export class OpusChunkDecoder {
  /**
   * @param {object} o
   * @param {(audio: {chunkId: number, pcm: Float32Array, frames: number, rate: number}) => void} o.onAudio
   *   decoded audio: the planes back to back [L..., R...]
   * @param {(message: string) => void} o.onError the decoder failed; it is closed
   * @param {Function} [o.AudioDecoderClass] WebCodecs' AudioDecoder
   * @param {Function} [o.EncodedAudioChunkClass] WebCodecs' EncodedAudioChunk
   */
  constructor({
    onAudio,
    onError,
    AudioDecoderClass = globalThis.AudioDecoder,
    EncodedAudioChunkClass = globalThis.EncodedAudioChunk,
  }) {
    this.onAudio = onAudio;
    this.onError = onError;
    this.AudioDecoderClass = AudioDecoderClass;
    this.EncodedAudioChunkClass = EncodedAudioChunkClass;
    this.decoder = null; // created at the first packet after a reset
    this.decodedFrames = 0;
  }

  /** Decode one chunk's packets (Uint8Arrays) in order. */
  decode(chunkId, packets) {
    const decoder = this.decoder ?? this.#open();
    if (decoder === null) return;
    try {
      packets.forEach((data, index) => {
        const timestamp = opusPacketTimestampUs(chunkId, index);
        decoder.decode(new this.EncodedAudioChunkClass({ type: "key", timestamp, duration: OPUS_PACKET_US, data }));
      });
    } catch (err) {
      this.#fail(decoder, err);
    }
  }

  /** Forget the decoder's state and anything still decoding. */
  reset() {
    const decoder = this.decoder;
    this.decoder = null;
    if (decoder && decoder.state !== "closed") decoder.close();
  }

  #open() {
    let decoder = null;
    try {
      decoder = new this.AudioDecoderClass({
        output: (audioData) => this.#output(decoder, audioData),
        error: (err) => this.#fail(decoder, err),
      });
      this.decoder = decoder;
      decoder.configure({ ...OPUS_DECODER_CONFIG });
    } catch (err) {
      this.#fail(this.decoder, err);
      return null;
    }
    return decoder;
  }

  #output(decoder, audioData) {
    try {
      if (decoder !== this.decoder) return; // reset since
      const frames = audioData.numberOfFrames;
      const pcm = new Float32Array(frames * 2);
      const channels = audioData.numberOfChannels;
      for (let c = 0; c < 2; c++) {
        const plane = pcm.subarray(c * frames, (c + 1) * frames);
        audioData.copyTo(plane, { planeIndex: Math.min(c, channels - 1), format: "f32-planar" });
      }
      this.decodedFrames += frames;
      this.onAudio({ chunkId: chunkIdAtUs(audioData.timestamp), pcm, frames, rate: audioData.sampleRate });
    } finally {
      audioData.close();
    }
  }

  #fail(decoder, err) {
    if (decoder !== this.decoder) return; // a decoder reset since: its errors are over
    this.reset();
    this.onError(err?.message ?? String(err));
  }
}
