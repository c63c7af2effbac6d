// StationPlayer: what both listening modes' players share (AuralisPlayer, the WebSocket stream;
// HttpStreamPlayer, the phone mode's <audio> element), so the page drives either the same way.

export class StationPlayer extends EventTarget {
  // A subclass has `station`, `wanted` (the listener asked for sound) and `play(station)`.

  /** Switch station: restarts the stream at the new station's live edge if playing. */
  async setStation(name) {
    this.station = name;
    if (this.wanted) await this.play(name);
  }

  /** Keep `v` as the volume, within 0..1; a subclass applies it to its output. */
  setVolume(v) {
    this.volume = Math.min(1, Math.max(0, v));
  }
}
