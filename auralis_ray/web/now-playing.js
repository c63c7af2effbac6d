// What a station plays now: read from a `now_playing` WebSocket message or from
// GET /api/stations/{name}/now, put into words for the page and the lock screen (MediaSession), and
// held back until the listener hears it. Pure.

export const MEDIA_ARTIST = "Auralis";

/**
 * A `now_playing` message or a /now answer -> {station, preset, key, mode, bpm, section,
 * sectionNumber, sinceChunkId}; null when it names no section. Fields it lacks are null.
 */
export function parseNowPlaying(message) {
  const m = message?.now_playing ?? message;
  if (m === null || typeof m !== "object") return null;
  const text = (v) => (typeof v === "string" && v !== "" ? v : null);
  const number = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const parsed = {
    station: text(m.station),
    preset: text(m.preset),
    key: text(m.key),
    mode: text(m.mode),
    bpm: number(m.bpm),
    section: text(m.section),
    sectionNumber: number(m.section_number),
    sinceChunkId: number(m.since_chunk_id),
  };
  const { preset, key, mode, bpm, section } = parsed;
  return [preset, key, mode, bpm, section].every((v) => v === null) ? null : parsed;
}

/** "Sleep: A aeolian, 44 bpm, still" (what is set of it). */
export function nowPlayingText(np) {
  if (!np) return "";
  const tonality = [np.key, np.mode].filter(Boolean).join(" ");
  const parts = [tonality, np.bpm === null ? "" : `${Math.round(np.bpm * 10) / 10} bpm`, np.section ?? ""].filter(Boolean);
  const preset = np.preset ? capitalize(np.preset) : "";
  if (!preset) return parts.join(", ");
  return parts.length ? `${preset}: ${parts.join(", ")}` : preset;
}

/** The station and what it plays, in one line: "night · Sleep: A aeolian, 44 bpm, still". */
export function stationLine(station, np) {
  const playing = nowPlayingText(np);
  return playing ? `${station} · ${playing}` : station;
}

/** MediaMetadata's fields for the lock screen and the system's media controls. */
export function mediaMetadataInit(station, np) {
  return { title: stationLine(station, np), artist: MEDIA_ARTIST, album: `${MEDIA_ARTIST} radio` };
}

function capitalize(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/**
 * Sections announced ahead of the audio, released when the listener hears them: the server announces a
 * section when it publishes the section's first chunk, and the listener plays that chunk a buffer later.
 */
export class NowPlayingSchedule {
  constructor() {
    this.pending = []; // oldest first by sinceChunkId
  }

  /** A parsed section (parseNowPlaying). */
  add(np) {
    this.pending.push(np);
    this.pending.sort((a, b) => (a.sinceChunkId ?? -Infinity) - (b.sinceChunkId ?? -Infinity));
  }

  /**
   * The latest section sounding at `playingChunkId` (null when none became due): it and the older
   * ones leave the schedule. A section without a chunk id is due at once; with no chunk playing yet,
   * only those are.
   */
  take(playingChunkId) {
    let due = -1;
    for (let i = 0; i < this.pending.length; i++) {
      const since = this.pending[i].sinceChunkId;
      if (since === null || (playingChunkId !== null && since <= playingChunkId)) due = i;
      else break;
    }
    if (due < 0) return null;
    const np = this.pending[due];
    this.pending.splice(0, due + 1);
    return np;
  }

  clear() {
    this.pending = [];
  }
}
