// What every browser scenario shares: headless Chromium with fake devices, one page per entry
// of `cfg.pages` (served the test client, connected to its origin's /ws with its token), a
// `until` that polls with a deadline and says what the pages saw when it runs out, and `fail`.
import { chromium } from 'playwright-core';
import * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

export function fail(message) {
  console.error(`voice test: ${message}`);
  process.exit(1);
}

export async function openPages(cfg) {
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

  const browser = await chromium.launch({ executablePath: chromiumPath, args });
  const pages = [];

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
  return { browser, pages, until };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
