import { test } from "node:test";
import assert from "node:assert/strict";
import {
  NowPlayingSchedule,
  mediaMetadataInit,
  nowPlayingText,
  parseNowPlaying,
  stationLine,
} from "../../auralis_ray/web/now-playing.js";

// what a station reports (StationCore.now_playing_message), as the WebSocket message and the /now answer
const SECTION = {
  preset: "sleep",
  key: "A",
  mode: "aeolian",
  bpm: 44.0,
  section: "still",
  section_number: 3,
  since_chunk_id: 1200,
  station: "night",
  since: 1712345678.5,
  stream_title: "night - Sleep: A aeolian, 44 bpm, still (section 3)",
};

test("a now_playing message, nested or flat, and a /now answer read the same", () => {
  const expected = {
    station: "night",
    preset: "sleep",
    key: "A",
    mode: "aeolian",
    bpm: 44,
    section: "still",
    sectionNumber: 3,
    sinceChunkId: 1200,
  };
  assert.deepEqual(parseNowPlaying({ type: "now_playing", ...SECTION }), expected);
  assert.deepEqual(parseNowPlaying({ type: "now_playing", now_playing: SECTION }), expected);
  assert.deepEqual(parseNowPlaying(SECTION), expected);
  assert.deepEqual(parseNowPlaying({ key: "D", bpm: "fast" }), {
    station: null, preset: null, key: "D", mode: null, bpm: null, section: null, sectionNumber: null, sinceChunkId: null,
  });
  assert.equal(parseNowPlaying({ type: "now_playing" }), null);
  assert.equal(parseNowPlaying(null), null);
  assert.equal(parseNowPlaying("sleep"), null);
});

test("now playing in words: preset, key and mode, bpm, section", () => {
  const np = parseNowPlaying(SECTION);
  assert.equal(nowPlayingText(np), "Sleep: A aeolian, 44 bpm, still");
  assert.equal(nowPlayingText({ ...np, bpm: 72.3333 }), "Sleep: A aeolian, 72.3 bpm, still");
  assert.equal(nowPlayingText({ ...np, preset: null, section: null }), "A aeolian, 44 bpm");
  assert.equal(nowPlayingText({ ...np, key: null, mode: null, bpm: null, section: null }), "Sleep");
  assert.equal(nowPlayingText(null), "");
  assert.equal(stationLine("night", np), "night · Sleep: A aeolian, 44 bpm, still");
  assert.equal(stationLine("night", null), "night");
});

test("the lock screen's metadata names the station and what it plays, by Auralis", () => {
  assert.deepEqual(mediaMetadataInit("night", parseNowPlaying(SECTION)), {
    title: "night · Sleep: A aeolian, 44 bpm, still",
    artist: "Auralis",
    album: "Auralis radio",
  });
  assert.equal(mediaMetadataInit("default", null).title, "default");
});

test("a section announced ahead of the audio is released when its first chunk plays", () => {
  const schedule = new NowPlayingSchedule();
  const at = (since, section) => ({ ...parseNowPlaying(SECTION), sinceChunkId: since, section });
  schedule.add(at(100, "still"));
  assert.equal(schedule.take(null), null, "nothing plays yet");
  assert.equal(schedule.take(99), null);
  assert.equal(schedule.take(100).section, "still");
  assert.equal(schedule.take(150), null, "released once");
  schedule.add(at(300, "bloom"));
  schedule.add(at(200, "drift"));
  assert.equal(schedule.take(250).section, "drift");
  assert.equal(schedule.take(299), null);
  schedule.add(at(400, "pulse"));
  assert.equal(schedule.take(500).section, "pulse", "the latest due one; the older one is dropped");
  assert.equal(schedule.take(10_000), null);
  schedule.add({ ...at(0, "still"), sinceChunkId: null });
  assert.equal(schedule.take(null).section, "still", "without a chunk id it is due at once");
  schedule.add(at(900, "bloom"));
  schedule.clear();
  assert.equal(schedule.take(10_000), null);
});
