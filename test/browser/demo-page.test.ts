/**
 * Issue #16: the demo room page at `/`, in a real browser (Debian's chromium driven by
 * playwright-core) against two real workers and Redis. Ann's tab is served by one worker, Bob's
 * by the other. They chat both ways; Bob's tab "loses the network" (the page's toggle) while Ann
 * keeps chatting and Bob writes a message that waits in the SDK's outbox; back online, Bob's tab
 * shows every message exactly once, in order. A reload keeps Bob's seat: same clientId, Ann is
 * not told of a new join, and recent chat comes back through room.history().
 *
 * TETHER_DEMO_SCREENSHOT=docs/demo.png also writes the README's screenshot of Ann's tab.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorkers, type Worker } from '../helpers/workers.ts';
import { HAVE_CHROMIUM, NO_CHROMIUM, launchBrowser, type Browser } from '../helpers/browser.ts';

let redis: TestRedis;
let workers: Worker[] = [];
let browser: Browser | undefined;

before(async () => {
  if (!HAVE_CHROMIUM) return;
  redis = await startRedis();
  workers = await startWorkers(2, {
    redisUrl: redis.url,
    prefix: redis.prefix,
    // A cut of a few seconds must be a blip (away), not an eviction: the default grace period.
    env: { DEMO_ROOMS: 'true', GRACE_PERIOD_MS: '30000' },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await redis?.stop();
});

/** Polls `read` until `ok` holds; fails with the last value seen. */
async function eventually<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T = await read();
  while (!ok(last)) {
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(last)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
    last = await read();
  }
  return last;
}

const chat = (page: Page) => page.locator('#messages li.msg .text').allTextContents();
const system = (page: Page) => page.locator('#messages li.sys').allTextContents();
const members = (page: Page) =>
  page.locator('#members li').evaluateAll((lis) => lis.map((li) => `${li.querySelector('.name')?.textContent}:${li.querySelector('.presence')?.textContent}`));
const connText = (page: Page) => page.locator('#conn-text').innerText();
/**
 * The page's module loads the SDK bundle with a dynamic import, which the load event does not wait
 * for; it enables the lobby's buttons once it has filled the lobby in and listens to them.
 */
const lobbyReady = (page: Page) => page.waitForSelector('#join-btn:not([disabled])');
const clientIdOf = (page: Page) => page.evaluate(() => (window as unknown as { tetherDemo: { client: { clientId: string } } }).tetherDemo.client.clientId);

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#chat-input', text);
  await page.press('#chat-input', 'Enter');
}
/** The status line of one of this page's own messages. */
const statusOf = (page: Page, text: string) =>
  page.locator('#messages li.msg', { hasText: text }).locator('.status').getAttribute('data-status');

test('demo page: chat both ways, a network cut caught up exactly once, a reload keeps the seat', { skip: !HAVE_CHROMIUM && NO_CHROMIUM, timeout: 120_000 }, async () => {
  const [w1, w2] = workers as [Worker, Worker];
  const errors: string[] = [];
  const ann = await browser!.context.newPage();
  const bob = await browser!.context.newPage();
  for (const [who, page] of [['ann', ann], ['bob', bob]] as const) page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));

  // Ann creates a room (DEMO_ROOMS=true) on worker 1; Bob follows the share link on worker 2.
  const index = await ann.goto(`${w1.url}/`);
  assert.equal(index?.status(), 200);
  assert.match(index!.headers()['content-security-policy'] ?? '', /default-src 'self'/);
  await lobbyReady(ann);
  await ann.fill('#name', 'Ann');
  await ann.click('#create-btn');
  await ann.waitForSelector('#room:not([hidden])');
  const code = (await ann.textContent('#room-code'))!;
  assert.match(code, /^[A-Z0-9]{8}$/);
  await eventually('Ann connected', () => connText(ann), (t) => t.startsWith('Online · worker w0'));

  await bob.goto(`${w2.url}/?room=${code}`);
  await lobbyReady(bob);
  assert.equal(await bob.inputValue('#code'), code, 'the share link fills the code in');
  await bob.fill('#name', 'Bob');
  await bob.click('#join-btn');
  await bob.waitForSelector('#room:not([hidden])');
  await eventually('Bob connected to the other worker', () => connText(bob), (t) => t.startsWith('Online · worker w1'));
  await eventually('Ann sees Bob', () => members(ann), (m) => m.includes('Bob:online') && m.includes('Ann (you):online'));

  // Chat both ways, with each sender's own status going pending → sent.
  await say(ann, 'a1: hi Bob');
  await eventually('Bob gets a1', () => chat(bob), (c) => c.join('|') === 'a1: hi Bob');
  await eventually('a1 sent', () => statusOf(ann, 'a1: hi Bob'), (s) => s === 'sent');
  await say(bob, 'b1: hello Ann');
  await eventually('Ann gets b1', () => chat(ann), (c) => c.join('|') === 'a1: hi Bob|b1: hello Ann');
  await eventually('b1 sent', () => statusOf(bob, 'b1: hello Ann'), (s) => s === 'sent');
  const bobId = await clientIdOf(bob);

  // Bob's network goes: his tab says so, Ann sees him away (not gone) and keeps chatting.
  await bob.click('#net-toggle');
  assert.equal(await bob.getAttribute('#net-toggle', 'aria-pressed'), 'true');
  await eventually('Bob reconnecting', () => connText(bob), (t) => /^Reconnecting… attempt \d+/.test(t));
  await eventually('Bob room offline', () => bob.textContent('#room-status'), (s) => s === 'offline');
  await eventually('Ann sees Bob away', () => members(ann), (m) => m.includes('Bob:away'));
  await say(ann, 'a2: are you there?');
  await say(ann, 'a3: still chatting');
  await say(bob, 'b2: written offline');
  await eventually('b2 waits in the outbox', () => statusOf(bob, 'b2: written offline'), (s) => s === 'pending');
  await eventually('Ann has a2, a3', () => chat(ann), (c) => c.length === 4);
  // Still cut after a few failed attempts: nothing reached Bob.
  await eventually('several failed attempts', () => connText(bob), (t) => Number(/attempt (\d+)/.exec(t)?.[1] ?? 0) >= 2);
  assert.deepEqual(await chat(bob), ['a1: hi Bob', 'b1: hello Ann', 'b2: written offline']);

  // Back online: Bob catches up on everything, once, in order; his message goes out after.
  await bob.click('#net-toggle');
  const expected = ['a1: hi Bob', 'b1: hello Ann', 'a2: are you there?', 'a3: still chatting', 'b2: written offline'];
  await eventually('Bob caught up', () => chat(bob), (c) => c.join('|') === expected.join('|'));
  await eventually('b2 sent', () => statusOf(bob, 'b2: written offline'), (s) => s === 'sent');
  await eventually('Ann got b2', () => chat(ann), (c) => c.join('|') === expected.join('|'));
  await eventually('Ann sees Bob back', () => members(ann), (m) => m.includes('Bob:online'));
  assert.equal(await bob.textContent('#room-status'), 'live');
  assert.equal(await clientIdOf(bob), bobId);

  // Playback: Ann (host) plays; Bob's bar follows; Bob has no control.
  await ann.click('#play-btn');
  await eventually('Bob sees it playing', () => bob.textContent('#play-state'), (s) => s === 'playing');
  assert.equal(await bob.isDisabled('#play-btn'), true, 'Bob is not the host');
  await eventually('Bob measured his clock', () => bob.textContent('#offset'), (t) => /ms$/.test(t ?? ''));

  // A reload keeps the seat: same clientId, no new join for Ann, and recent chat comes back.
  const joinsBefore = (await system(ann)).filter((s) => s === 'Bob joined').length;
  assert.equal(joinsBefore, 1);
  await bob.reload();
  await bob.waitForSelector('#room:not([hidden])');
  assert.equal(await clientIdOf(bob), bobId, 'same clientId after the reload');
  await eventually('history after reload', () => chat(bob), (c) => c.join('|') === expected.join('|'));
  await say(ann, 'a4: welcome back');
  const all = [...expected, 'a4: welcome back'];
  await eventually('Bob live again after reload', () => chat(bob), (c) => c.join('|') === all.join('|'));
  await eventually('Ann: Bob still one member', () => members(ann), (m) => m.filter((x) => x.startsWith('Bob')).length === 1 && m.includes('Bob:online'));
  assert.equal((await system(ann)).filter((s) => s === 'Bob joined').length, 1, 'the reload was not announced as a new join');
  assert.deepEqual(await chat(ann), all);
  assert.equal(await bob.textContent('#play-state'), 'playing', 'the reloaded tab joined mid-track');

  const screenshot = process.env.TETHER_DEMO_SCREENSHOT;
  if (screenshot) {
    await ann.evaluate(() => (window as unknown as { tetherDemo: { room: { seek(ms: number): Promise<unknown> } } }).tetherDemo.room.seek(83_000));
    await ann.click('#pause-btn');
    await eventually('paused', () => ann.textContent('#play-state'), (s) => s === 'paused');
    await eventually('Bob paused too', () => bob.textContent('#pos'), (p) => p === '1:23');
    await ann.screenshot({ path: screenshot });
  }
  assert.deepEqual(errors, [], 'no uncaught errors in the pages');
});

test('assets, security headers, and a server without DEMO_ROOMS: the page joins by code only', { skip: !HAVE_CHROMIUM && NO_CHROMIUM, timeout: 60_000 }, async () => {
  const asset = await fetch(`${workers[0]!.url}/assets/tether-client.min.js`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('content-type') ?? '', /javascript/);
  assert.equal(asset.headers.get('x-content-type-options'), 'nosniff');
  assert.match(await asset.text(), /export\{/);
  const unknown = await fetch(`${workers[0]!.url}/assets/nope.js`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  const bad = await fetch(`${workers[0]!.url}/v1/demo/rooms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', extra: 1 }) });
  assert.equal(bad.status, 400, 'strict body');

  const [plain] = await startWorkers(1, { redisUrl: redis.url, prefix: redis.prefix, nodeId: 'plain' });
  workers.push(plain!);
  const created = await fetch(`${plain!.url}/v1/demo/rooms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(created.status, 404, 'no demo room creation unless DEMO_ROOMS=true');
  const page = await browser!.context.newPage();
  await page.goto(`${plain!.url}/`);
  await lobbyReady(page);
  await page.fill('#name', 'Cy');
  await page.click('#create-btn');
  await eventually('the page says creation is off', () => page.textContent('#lobby-error'), (t) => /turned off on this server \(DEMO_ROOMS\)/.test(t ?? ''));
  await page.fill('#code', 'ZZZZZZZZ');
  await page.click('#join-btn');
  await eventually('an unknown code is explained', () => page.textContent('#lobby-error'), (t) => /No room with this code/.test(t ?? ''));
  assert.equal(await page.isHidden('#room'), true);
});
