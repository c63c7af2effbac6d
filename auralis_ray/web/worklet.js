// AudioWorkletProcessor: a thin adapter around Playout (ring buffer + resampler + prebuffer).
// Decoded chunks, each with its rate (44.1 kHz PCM, 48 kHz Opus), arrive on a MessagePort straight
// from the stream worker (the main thread never touches audio data); stats go back to the main thread and to the stream worker ~10 times a second.

import { Playout } from "./playout.js";

const STATS_INTERVAL_SEC = 0.1;

class AuralisPlayerProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions ?? {};
    this.playout = new Playout({ outRate: sampleRate, inRate: o.inRate ?? 44100, targetMs: o.targetMs ?? 1000 });
    this.streamPort = null;
    this.statsEvery = Math.max(1, Math.round((STATS_INTERVAL_SEC * sampleRate) / 128));
    this.blocks = 0;
    this.port.onmessage = (e) => this.onCommand(e.data, e.ports);
  }

  onCommand(msg, ports) {
    switch (msg.type) {
      case "stream-port": // the stream worker's end of a MessageChannel
        this.streamPort = ports[0];
        this.streamPort.onmessage = (e) => this.onCommand(e.data, e.ports);
        break;
      case "chunk":
        if (msg.rate) this.playout.setInRate(msg.rate);
        this.playout.push(msg.pcm, msg.frames);
        break;
      case "target":
        this.playout.setTargetMs(msg.ms);
        break;
      case "start":
        this.playout.start();
        break;
      case "stop":
        this.playout.stop();
        this.postStats();
        break;
      case "flush":
        this.playout.flush();
        break;
    }
  }

  postStats() {
    const p = this.playout;
    const stats = {
      type: "playout",
      state: p.state,
      bufferedMs: p.bufferedMs,
      targetMs: p.targetMs,
      underruns: p.underruns,
      playedMs: p.playedMs,
      droppedFrames: p.ring.droppedFrames,
      driftPpm: p.resampler.ppm,
    };
    this.port.postMessage(stats);
    if (this.streamPort) this.streamPort.postMessage(stats);
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const underrun = this.playout.render(out, out[0].length);
    this.blocks += 1;
    if (underrun || this.blocks % this.statsEvery === 0) this.postStats();
    return true;
  }
}

registerProcessor("auralis-player", AuralisPlayerProcessor);
