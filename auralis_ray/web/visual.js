// A small level + spectrum picture from an AnalyserNode: log-spaced bars, and a level bar (RMS) on the left.

const BARS = 48;
let freq = null;
let wave = null;

export function drawVisual(canvas, analyser, active) {
  const dpr = globalThis.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * dpr);
  const h = Math.round(canvas.clientHeight * dpr);
  if (w === 0 || h === 0) return;
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  if (!analyser || !active) {
    g.fillStyle = "#25304a";
    g.fillRect(0, h - 2 * dpr, w, 2 * dpr);
    return;
  }
  if (!freq || freq.length !== analyser.frequencyBinCount) {
    freq = new Uint8Array(analyser.frequencyBinCount);
    wave = new Float32Array(analyser.fftSize);
  }
  analyser.getByteFrequencyData(freq);
  analyser.getFloatTimeDomainData(wave);

  let sum = 0;
  for (const v of wave) sum += v * v;
  const rms = Math.sqrt(sum / wave.length);
  const db = 20 * Math.log10(rms + 1e-9);
  const level = Math.min(1, Math.max(0, (db + 60) / 60)); // -60 dBFS .. 0 dBFS

  const meterW = 10 * dpr;
  const pad = 8 * dpr;
  g.fillStyle = "#1d2843";
  g.fillRect(pad, pad, meterW, h - 2 * pad);
  g.fillStyle = level > 0.9 ? "#ff8a8a" : "#8fe3b0";
  const lh = level * (h - 2 * pad);
  g.fillRect(pad, h - pad - lh, meterW, lh);

  const x0 = pad * 2 + meterW;
  const bw = (w - x0 - pad) / BARS;
  const nyquist = analyser.context.sampleRate / 2;
  const grad = g.createLinearGradient(0, h, 0, 0);
  grad.addColorStop(0, "#7fc8f8");
  grad.addColorStop(1, "#b69cff");
  g.fillStyle = grad;
  for (let i = 0; i < BARS; i++) {
    // 30 Hz .. 16 kHz, log spaced
    const f0 = 30 * Math.pow(16000 / 30, i / BARS);
    const f1 = 30 * Math.pow(16000 / 30, (i + 1) / BARS);
    const b0 = Math.floor((f0 / nyquist) * freq.length);
    const b1 = Math.max(b0 + 1, Math.floor((f1 / nyquist) * freq.length));
    let m = 0;
    for (let b = b0; b < b1 && b < freq.length; b++) m = Math.max(m, freq[b]);
    const bh = (m / 255) * (h - 2 * pad);
    g.fillRect(x0 + i * bw + 1, h - pad - bh, Math.max(1, bw - 2), bh);
  }
}
