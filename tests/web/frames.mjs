// Frames as the server builds them, for the tests.

/** A format=opus frame built as auralis_ray/stream/codecs/opus_frame.py builds it: "<Qd" header, then ">H" length + bytes per packet. */
export function opusFrame(chunkId, timestamp, packets) {
  const size = 16 + packets.reduce((n, p) => n + 2 + p.length, 0);
  const buf = new ArrayBuffer(size);
  const view = new DataView(buf);
  view.setBigUint64(0, BigInt(chunkId), true);
  view.setFloat64(8, timestamp, true);
  let offset = 16;
  for (const p of packets) {
    view.setUint16(offset, p.length, false);
    new Uint8Array(buf, offset + 2, p.length).set(p);
    offset += 2 + p.length;
  }
  return buf;
}
