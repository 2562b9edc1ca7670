// The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core): the page
// loads, its heatmap receives routing data, and the console stays free of errors. Skipped, saying why,
// where no Chromium is installed (.ci/run installs it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { genModel, removeDir, tempDir } from '../reference/harness.js';
import type { Running } from './serve-harness.js';
import { startServer } from './serve-harness.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const root = tempDir('moesaic-serve-dash-');
const dir = join(root, 'tiny');
let srv: Running | undefined;

before(async () => {
  if (!CHROMIUM) return;
  await genModel(dir, 'mixtral', { seed: 41, dtype: 'f32' });
  srv = await startServer(dir, {});
});
after(async () => {
  await srv?.close();
  removeDir(root);
});

test('dashboard: loads, the heatmap gets data, no console errors', { skip: CHROMIUM ? false : 'no Chromium found (apt-get install chromium)', timeout: 60_000 }, async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const res = await page.goto(srv!.url, { waitUntil: 'load' });
    assert.equal(res?.status(), 200);
    assert.equal(await page.title(), 'moesaic serve');
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'tiny');
    const body = { model: 'tiny', prompt: [1, 2, 3, 4, 5], max_tokens: 8 };
    const r = await fetch(`${srv!.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    await page.waitForFunction(() => Number(document.getElementById('heat')?.dataset.total) > 0, undefined, { timeout: 10_000 });
    const cells = Number(await page.locator('#heat').getAttribute('data-cells'));
    assert.equal(cells, srv!.server.ctx.metrics.numLayers * 8, 'layers x experts cells');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
