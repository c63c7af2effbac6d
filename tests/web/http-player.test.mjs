// HttpStreamPlayer (the phone mode) around a fake <audio> element: what it opens, how it reopens a
// stream that ends or fails, and what stops it. Timers are node's mock timers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HttpStreamPlayer, STALL_TIMEOUT_MS } from "../../auralis_ray/web/http-player.js";

/** The parts of HTMLAudioElement the player uses; the test fires its events. */
class FakeAudio extends EventTarget {
  constructor({ oggOpus = true } = {}) {
    super();
    this.oggOpus = oggOpus;
    this.src = "";
    this.loads = []; // each source it was given, in order
    this.paused = true;
    this.ended = false;
    this.currentTime = 0;
    this.volume = 1;
    this.error = null;
    this.buffered = { length: 0, end: () => 0 };
  }

  canPlayType(type) {
    return type === "audio/ogg; codecs=opus" && this.oggOpus ? "probably" : "";
  }

  setAttribute(name, value) {
    this[name] = value;
  }

  removeAttribute(name) {
    this[name] = "";
  }

  async play() {
    this.loads.push(this.src);
    this.paused = false;
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    this.fire("pause");
  }

  load() {
    this.currentTime = 0;
  }

  fire(type) {
    this.dispatchEvent(new Event(type));
  }
}

function world(t, audioOptions) {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  let nowMs = 0;
  const tick = (ms) => {
    for (let left = ms; left > 0; left -= 100) {
      nowMs += Math.min(100, left);
      t.mock.timers.tick(Math.min(100, left));
    }
  };
  const heads = [];
  t.mock.method(globalThis, "fetch", async (url, init) => {
    heads.push([url, init.method]);
    return { ok: true, headers: new Map([["icy-br", "128"]]) };
  });
  const audio = new FakeAudio(audioOptions);
  const player = new HttpStreamPlayer({ audio, httpBase: "http://radio.test:8000", now: () => nowMs });
  return { audio, player, heads, tick };
}

test("play opens the station's Ogg/Opus stream", async (t) => {
  const { audio, player } = world(t);
  assert.equal(player.state, "idle");
  await player.play("night");
  assert.deepEqual(audio.loads, ["http://radio.test:8000/listen/night.opus"]);
  assert.equal(player.state, "connecting");
  audio.fire("playing");
  assert.equal(player.state, "playing");
  player.stop();
});

test("where the element has no Ogg/Opus, play opens the MP3 stream", async (t) => {
  const { audio, player } = world(t, { oggOpus: false });
  await player.play("night");
  assert.deepEqual(audio.loads, ["http://radio.test:8000/listen/night.mp3"]);
  player.stop();
});

test("once it plays, the stream's bitrate is asked once, with HEAD, and named", async (t) => {
  const { audio, player, heads } = world(t);
  await player.play("night");
  assert.equal(player.stats().formatLabel, "Ogg Opus (HTTP)");
  audio.fire("playing");
  audio.fire("playing");
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(heads, [["http://radio.test:8000/listen/night.opus", "HEAD"]]);
  assert.equal(player.stats().formatLabel, "Ogg Opus 128 kbit/s (HTTP)");
  player.stop();
});

test("a stream that ends (its pause first) or fails is opened again after the backoff", async (t) => {
  const { audio, player, tick } = world(t);
  await player.play("night");
  audio.fire("playing");
  audio.ended = true;
  audio.pause(); // a live stream that ends pauses first
  audio.fire("ended");
  assert.equal(player.wanted, true);
  assert.equal(player.state, "reconnecting");
  assert.equal(player.stats().lastError, "the stream ended");
  audio.ended = false;
  tick(500); // the first backoff is at most 500 ms
  await Promise.resolve();
  assert.equal(audio.loads.length, 2);
  assert.equal(player.stats().reconnects, 1);
  audio.error = { code: 2, message: "network error" };
  audio.fire("error");
  audio.fire("error"); // one reopen at a time
  tick(1000);
  await Promise.resolve();
  assert.equal(audio.loads.length, 3);
  assert.equal(player.stats().lastError, "network error");
  player.stop();
});

test("a stream whose time stops moving is opened again", async (t) => {
  const { audio, player, tick } = world(t);
  await player.play("night");
  audio.fire("playing");
  for (let s = 1; s <= 5; s++) {
    audio.currentTime = s;
    tick(1000);
  }
  assert.equal(audio.loads.length, 1, "moving time is fine");
  tick(STALL_TIMEOUT_MS + 1000);
  assert.equal(player.stats().lastError, "the stream stalled");
  tick(500);
  await Promise.resolve();
  assert.equal(audio.loads.length, 2);
  player.stop();
});

test("stop lets go of the stream; a pause from elsewhere (a call, another app) stops listening", async (t) => {
  const { audio, player, tick } = world(t);
  await player.play("night");
  audio.fire("playing");
  player.stop();
  assert.equal(audio.src, "");
  assert.ok(audio.paused);
  assert.equal(player.state, "stopped");
  tick(60_000);
  assert.equal(audio.loads.length, 1, "nothing reopens after a stop");

  await player.play("night");
  audio.fire("playing");
  audio.pause();
  assert.equal(player.wanted, false);
  assert.equal(player.state, "stopped");
  assert.equal(audio.src, "http://radio.test:8000/listen/night.opus", "the system's media controls keep their source");
});

test("after a pause (the lock screen's) play opens the stream afresh, at the live edge", async (t) => {
  const { audio, player } = world(t);
  await player.play("night");
  audio.fire("playing");
  player.pause();
  assert.ok(audio.paused);
  assert.equal(audio.src, "http://radio.test:8000/listen/night.opus");
  assert.equal(player.state, "stopped");
  await player.play();
  assert.deepEqual(audio.loads, ["http://radio.test:8000/listen/night.opus", "http://radio.test:8000/listen/night.opus"]);
  assert.equal(player.wanted, true);
  player.stop();
});

/** A world whose player plays "night" at volume 0.8, halfway through a 10 s sleep-timer fade. */
async function halfFaded(t) {
  const w = world(t);
  w.player.setVolume(0.8);
  await w.player.play("night");
  w.audio.fire("playing");
  w.player.fadeOutAndStop(10);
  w.tick(5000);
  return w;
}

test("the sleep timer's fade lowers the volume to nothing, then stops and restores it", async (t) => {
  const { audio, player, tick } = await halfFaded(t);
  assert.ok(Math.abs(audio.volume - 0.4) < 1e-9, `${audio.volume}`);
  tick(5000);
  assert.equal(player.wanted, false);
  assert.equal(audio.volume, 0.8);
});

test("another station during the sleep timer's fade ends the fade: full volume, no stop later", async (t) => {
  const { audio, player, tick } = await halfFaded(t);
  await player.play("day");
  assert.equal(audio.volume, 0.8);
  tick(10_000);
  assert.equal(player.wanted, true, "the fade's stop does not come");
  assert.equal(audio.volume, 0.8);
  player.stop();
});
