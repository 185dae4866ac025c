// What the browser flows share: the public API called as the app does, screenshots of each
// step, portal clicks, and Chromium launched as these machines run it.
// (playwright-core from .venv/node, found through NODE_PATH; Debian's chromium.)
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { chromium } = require('playwright-core');

/** Calls `method route` on `base` (a JSON body when given) and returns the answer's JSON, which must be 2xx. */
async function call(base, method, route, token, body) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
  const response = await fetch(base + route, init);
  const answer = await response.json();
  assert.ok(response.ok, `${method} ${route}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** Saves a full-page screenshot of the step under `shots`. */
async function step(shots, name, page) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  console.log(`step: ${name}`);
}

/** Clicks a portal button (a form POST answered by a redirect) and waits for the page it leads to. */
async function clickAndReload(page, selector, url) {
  const reloaded = page.waitForResponse((r) => r.url() === url && r.request().method() === 'GET');
  await page.click(selector);
  assert.equal((await reloaded).status(), 200);
  await page.waitForLoadState('load');
}

/** Runs `flow(page)` in a fresh headless Chromium and exits non-zero when it throws. */
function run(flow) {
  (async () => {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      await flow(await browser.newPage({ viewport: { width: 900, height: 640 } }));
    } finally {
      await browser.close();
    }
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { call, step, clickAndReload, run };
