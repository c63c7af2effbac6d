import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ListenMode,
  chooseListenMode,
  chooseStreamKind,
  isPhone,
  listenStreamUrl,
  streamLabel,
} from "../../auralis_ray/web/listen-mode.js";

const PHONE = { coarsePointer: true, screenMinPx: 390 };
const TABLET = { coarsePointer: true, screenMinPx: 820 };
const DESKTOP = { coarsePointer: false, screenMinPx: 1080 };

test("phones get the phone mode: the browser's mobile hint, or a coarse pointer on a small screen", () => {
  assert.equal(chooseListenMode(PHONE), ListenMode.PHONE);
  assert.equal(chooseListenMode({ ...DESKTOP, mobileHint: true }), ListenMode.PHONE);
  assert.equal(chooseListenMode({ ...PHONE, mobileHint: false }), ListenMode.PHONE, "a phone asking for the desktop site");
  assert.equal(chooseListenMode(TABLET), ListenMode.WEBSOCKET);
  assert.equal(chooseListenMode(DESKTOP), ListenMode.WEBSOCKET);
  assert.equal(chooseListenMode({ ...DESKTOP, mobileHint: false }), ListenMode.WEBSOCKET);
  assert.equal(chooseListenMode({ coarsePointer: false, screenMinPx: 390 }), ListenMode.WEBSOCKET, "a narrow desktop window");
  assert.equal(isPhone({}), false);
});

test("the page's ?mode= wins, then the listener's toggle, then the device", () => {
  assert.equal(chooseListenMode({ ...PHONE, requested: "websocket", saved: "phone" }), ListenMode.WEBSOCKET);
  assert.equal(chooseListenMode({ ...DESKTOP, requested: "phone" }), ListenMode.PHONE);
  assert.equal(chooseListenMode({ ...PHONE, saved: "websocket" }), ListenMode.WEBSOCKET);
  assert.equal(chooseListenMode({ ...DESKTOP, saved: "phone" }), ListenMode.PHONE);
  assert.equal(chooseListenMode({ ...DESKTOP, requested: "loud", saved: "quiet" }), ListenMode.WEBSOCKET, "unknown names are ignored");
});

test("without AudioWorklet (a page not on https or localhost) only the phone mode plays", () => {
  assert.equal(chooseListenMode({ ...DESKTOP, requested: "websocket", workletAvailable: false }), ListenMode.PHONE);
});

test("the phone mode's stream: Ogg/Opus where the element plays it, MP3 otherwise", () => {
  assert.equal(chooseStreamKind(true), "opus");
  assert.equal(chooseStreamKind(false), "mp3");
  assert.equal(listenStreamUrl("http://127.0.0.1:8000/", "night", "opus"), "http://127.0.0.1:8000/listen/night.opus");
  assert.equal(listenStreamUrl("https://radio.example", "deep space", "mp3"), "https://radio.example/listen/deep%20space.mp3");
  assert.equal(streamLabel("opus", 128), "Ogg Opus 128 kbit/s (HTTP)");
  assert.equal(streamLabel("mp3", null), "MP3 (HTTP)");
});
