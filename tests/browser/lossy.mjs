// A's camera and microphone reach B while the test's relay drops A's packets to the server.
// After the media flows, prints `{"flowing":true}`, then for `cfg.seconds` seconds B's stats of
// A's camera and microphone and A's send stats twice a second, as lines of
// `{"t": ms since flowing, "video": .., "audio": .., "sent": ..}`; then `{"done":true}`.
//
// Usage: node lossy.mjs '{"pages":[{"origin":..,"token":..},{..}],"channel_id":"..","seconds":16}'
import { fail, openPages, sleep } from './harness.mjs';

const cfg = JSON.parse(process.argv[2]);
const { browser, pages, until } = await openPages(cfg);
try {
  const [a, b] = pages;
  await a.evaluate((c) => window.ecto.join(c), cfg.channel_id);
  await a.evaluate(() => window.ecto.produce('audio', 'mic'));
  await a.evaluate(() => window.ecto.produce('video', 'camera', { width: 640, height: 480, frameRate: 30 }));
  await b.evaluate((c) => window.ecto.join(c), cfg.channel_id);
  await until('A\'s audio and video reach B', async () => {
    const s = await b.evaluate(() => window.ecto.stats());
    const audio = s.find((x) => x.kind === 'audio');
    const video = s.find((x) => x.source === 'camera');
    return audio && video && audio.packetsReceived > 50 && video.framesDecoded > 10;
  });
  console.log(JSON.stringify({ flowing: true }));
  const start = Date.now();
  while (Date.now() - start < cfg.seconds * 1000) {
    await sleep(500);
    const s = await b.evaluate(() => window.ecto.stats());
    const sent = await a.evaluate(() => window.ecto.sendStats());
    console.log(JSON.stringify({
      t: Date.now() - start,
      video: s.find((x) => x.source === 'camera'),
      audio: s.find((x) => x.kind === 'audio'),
      sent,
    }));
  }
  console.log(JSON.stringify({ done: true, errors: { a: await a.evaluate(() => window.ecto.errors()), b: await b.evaluate(() => window.ecto.errors()) } }));
} catch (e) {
  fail(e && e.stack || String(e));
} finally {
  await browser.close();
}
