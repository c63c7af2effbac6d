// How the page listens, and where the phone mode's stream is. Pure: what the browser says about
// itself comes in as arguments.
//
//   websocket  the WebSocket stream through the AudioWorklet: low latency, tiers, live statistics
//   phone      the station's HTTP stream through an <audio> element with MediaSession metadata:
//              it keeps playing with a phone's screen locked, where a Web Audio page goes silent

export const ListenMode = Object.freeze({ WEBSOCKET: "websocket", PHONE: "phone" });
const MODES = Object.values(ListenMode);

/** The shorter side of a screen (CSS px) at or below which a touch screen is a phone's. */
export const PHONE_SCREEN_MAX_PX = 600;

/**
 * @param {object} o
 * @param {string|null} [o.requested] the page's `?mode=`
 * @param {string|null} [o.saved] the listener's last choice on the toggle
 * @param {boolean|undefined} [o.mobileHint] navigator.userAgentData.mobile, where the browser has it
 * @param {boolean} [o.coarsePointer] matchMedia("(pointer: coarse)")
 * @param {number} [o.screenMinPx] the shorter side of the screen, CSS px
 * @param {boolean} [o.workletAvailable] AudioWorklet is there (it needs https or localhost)
 * @returns {string} a ListenMode
 */
export function chooseListenMode({
  requested = null,
  saved = null,
  mobileHint,
  coarsePointer = false,
  screenMinPx = Infinity,
  workletAvailable = true,
}) {
  if (!workletAvailable) return ListenMode.PHONE;
  if (MODES.includes(requested)) return requested;
  if (MODES.includes(saved)) return saved;
  return isPhone({ mobileHint, coarsePointer, screenMinPx }) ? ListenMode.PHONE : ListenMode.WEBSOCKET;
}

/** The browser's own mobile hint when it gives one; otherwise a coarse pointer on a small screen. */
export function isPhone({ mobileHint, coarsePointer = false, screenMinPx = Infinity }) {
  if (mobileHint === true) return true;
  return coarsePointer && screenMinPx <= PHONE_SCREEN_MAX_PX;
}

export const StreamKind = Object.freeze({ OGG_OPUS: "opus", MP3: "mp3" });

/** Ogg/Opus where the <audio> element plays it (audio.canPlayType's answer), MP3 otherwise. */
export function chooseStreamKind(canPlayOggOpus) {
  return canPlayOggOpus ? StreamKind.OGG_OPUS : StreamKind.MP3;
}

/** `{httpBase}/listen/{station}.opus` or `.mp3` */
export function listenStreamUrl(httpBase, station, kind) {
  return `${httpBase.replace(/\/+$/, "")}/listen/${encodeURIComponent(station)}.${kind}`;
}

/** "Ogg Opus 128 kbit/s (HTTP)", "MP3 (HTTP)" when the bitrate is unknown. */
export function streamLabel(kind, bitrateKbps = null) {
  const name = kind === StreamKind.OGG_OPUS ? "Ogg Opus" : "MP3";
  return bitrateKbps > 0 ? `${name} ${bitrateKbps} kbit/s (HTTP)` : `${name} (HTTP)`;
}
