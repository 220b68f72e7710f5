// Two headless Chromium pages in one voice channel of a running ecto-server, through its /ws
// exactly as the Ecto client talks to it: A's fake microphone and camera reach B, then a screen
// share, mute and unmute, and leave. Prints one JSON object of what was measured; exits non-zero
// with a message when a step does not happen in time.
//
// Usage: node voice.mjs '{"pages":[{"origin":"http://127.0.0.1:PORT","token":"..."},{...}],
//                         "channel_id":"..."}'
import { fail, openPages } from './harness.mjs';

const cfg = JSON.parse(process.argv[2]);
const { browser, pages, until } = await openPages(cfg);
try {
  const [a, b] = pages;
  const channel = cfg.channel_id;
  const result = {};

  // A joins and produces microphone and camera; B joins and consumes them.
  await a.evaluate((c) => window.ecto.join(c), channel);
  await a.evaluate(() => window.ecto.produce('audio', 'mic'));
  await a.evaluate(() => window.ecto.produce('video', 'camera'));
  await b.evaluate((c) => window.ecto.join(c), channel);
  const flowing = await until('A\'s audio and video reach B', async () => {
    const s = await b.evaluate(() => window.ecto.stats());
    const audio = s.find((x) => x.kind === 'audio');
    const video = s.find((x) => x.source === 'camera');
    return audio && video && audio.packetsReceived > 50 && audio.totalAudioEnergy > 0 && video.framesDecoded > 5
      ? { audio, video } : null;
  });
  result.audio = flowing.audio;
  result.camera = flowing.video;
  // B speaks back: both directions and all four transports carry media.
  await b.evaluate(() => window.ecto.produce('audio', 'mic'));
  result.reply = await until('B\'s audio reaches A', async () => {
    const audio = (await a.evaluate(() => window.ecto.stats())).find((x) => x.kind === 'audio');
    return audio && audio.packetsReceived > 50 ? audio : null;
  });
  result.transports = {
    a: await a.evaluate(() => window.ecto.transportStates()),
    b: await b.evaluate(() => window.ecto.transportStates()),
  };

  // A shares a screen (a source of its own, with its own permission).
  await a.evaluate(() => window.ecto.produce('video', 'screen'));
  result.screen = await until('A\'s screen reaches B', async () => {
    const s = await b.evaluate(() => window.ecto.stats());
    const screen = s.find((x) => x.source === 'screen');
    return screen && screen.framesDecoded > 5 ? screen : null;
  });

  // Mute: B hears of it and A's microphone stops reaching B; unmute: it comes back.
  const audioPackets = async () => (await b.evaluate(() => window.ecto.stats())).find((x) => x.kind === 'audio').packetsReceived;
  await a.evaluate(() => window.ecto.mute(true));
  const aUser = result.audio.user;
  await b.evaluate((u) => window.ecto.waitFor('voice.state_update', 'self_mute', true), aUser);
  await new Promise((r) => setTimeout(r, 500));
  const m1 = await audioPackets();
  await new Promise((r) => setTimeout(r, 1500));
  const m2 = await audioPackets();
  await a.evaluate(() => window.ecto.mute(false));
  await b.evaluate(() => window.ecto.waitFor('voice.state_update', 'self_mute', false));
  await new Promise((r) => setTimeout(r, 1500));
  const m3 = await audioPackets();
  result.muted_packets = m2 - m1;
  result.unmuted_packets = m3 - m2;

  // A leaves: B hears the state removed and every producer closed.
  await a.evaluate(() => window.ecto.leave());
  await b.evaluate(() => window.ecto.waitFor('voice.state_update', '_removed', true));
  result.producers_closed = await until('three producer_closed at B', async () => {
    const n = (await b.evaluate(() => window.ecto.frames('voice.producer_closed'))).length;
    return n >= 3 ? n : null;
  });
  result.errors = {
    a: await a.evaluate(() => window.ecto.errors()),
    b: await b.evaluate(() => window.ecto.errors()),
  };
  console.log(JSON.stringify(result));
} catch (e) {
  fail(e && e.stack || String(e));
} finally {
  await browser.close();
}
