// Two headless Chromium pages in one voice channel of a running ecto-server, through its /ws
// exactly as the Ecto client talks to it: A's fake microphone and camera reach B, then a screen
// share, mute and unmute, and leave. Prints one JSON object of what was measured; exits non-zero
// with a message when a step does not happen in time.
//
// Usage: node voice.mjs '{"pages":[{"origin":"http://127.0.0.1:PORT","token":"..."},{...}],
//                         "channel_id":"..."}'
import { chromium } from 'playwright-core';
import * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cfg = JSON.parse(process.argv[2]);
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

const bundle = (await esbuild.build({
  entryPoints: [join(here, 'entry.js')],
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'browser',
  logLevel: 'silent',
})).outputFiles[0].text;
const pageJs = readFileSync(join(here, 'page.js'), 'utf8');
const html = '<!doctype html><html><body><script src="/__voice/msc.js"></script><script src="/__voice/page.js"></script></body></html>';

// Origins that are not localhost (managed servers are told apart by host name) are mapped to
// loopback and treated as secure, so that getUserMedia works on them.
const origins = cfg.pages.map((p) => new URL(p.origin));
const insecure = origins.filter((o) => o.hostname !== '127.0.0.1' && o.hostname !== 'localhost').map((o) => o.origin);
const args = [
  '--headless', '--no-sandbox', '--disable-gpu',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-quic',
  // The page is served by the test (route.fulfill), so it has no address; Chromium would then
  // treat it as public and block its socket to the loopback server.
  '--disable-features=LocalNetworkAccessChecks',
];
if (insecure.length > 0) {
  const hosts = [...new Set(origins.map((o) => o.hostname))];
  args.push(`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(',')}`);
  args.push(`--unsafely-treat-insecure-origin-as-secure=${insecure.join(',')}`);
}

function fail(message) {
  console.error(`voice test: ${message}`);
  process.exit(1);
}

// What the pages last reported, for the message of a step that does not happen in time.
async function diagnosis() {
  const out = {};
  for (const [i, page] of pages.entries()) {
    out[i] = await page
      .evaluate(async () => ({ stats: await window.ecto.stats(), errors: window.ecto.errors(), transports: await window.ecto.transportStates() }))
      .catch((e) => String(e));
  }
  return JSON.stringify(out);
}

async function until(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out: ${what}; the pages saw: ${await diagnosis()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const browser = await chromium.launch({ executablePath: chromiumPath, args });
const pages = [];
try {
  for (const [i, p] of cfg.pages.entries()) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`[page ${i}] ${e}`));
    await page.route(`${origins[i].origin}/__voice/**`, (route) => {
      const url = route.request().url();
      if (url.endsWith('/msc.js')) return route.fulfill({ contentType: 'application/javascript', body: bundle });
      if (url.endsWith('/page.js')) return route.fulfill({ contentType: 'application/javascript', body: pageJs });
      return route.fulfill({ contentType: 'text/html', body: html });
    });
    await page.goto(`${origins[i].origin}/__voice/index.html`);
    await page.evaluate((token) => window.ecto.connect(token), p.token);
    pages.push(page);
  }
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
