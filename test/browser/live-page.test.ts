// The live sale page in a real browser (headless Chromium driven by playwright-core) while a
// small sale runs: a refused token shows a banner, the admin token opens the view, the
// units-left figure changes as units sell, the page runs without a script or policy error,
// and a dropped stream shows a banner. Screenshots land in test-output/ (gitignored).
// Chromium: CHROMIUM_PATH, or Debian's /usr/bin/chromium (`apt-get install -y chromium`);
// a machine without it fails here, it does not skip.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buy, createSku, startEngine, token, uid, until, type RunningApi } from '../helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const outputDir = fileURLToPath(new URL('../../../test-output/', import.meta.url));

describe('live sale page in a browser', { timeout: 120_000 }, () => {
  let api: RunningApi;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const problems: string[] = [];
  const selling = uid('page-sneaker');
  const soldOut = uid('page-cap');
  const scheduled = uid('page-later');
  let saleRunning = true;
  let apiStopped = false;
  let sale: Promise<number> | undefined;

  before(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH to a Chromium binary.`,
      );
    mkdirSync(outputDir, { recursive: true });
    api = await startEngine(['writer', 'relay', 'sweeper', 'api']);
    await createSku(api, {
      sku: selling,
      name: 'Trail runner, size 42',
      stock: 400,
      perUserLimit: 400,
      reservationTtlSeconds: 45,
    });
    await createSku(api, { sku: soldOut, name: 'Signed cap', stock: 3, perUserLimit: 3 });
    await createSku(api, {
      sku: scheduled,
      name: 'Winter jacket (next drop)',
      stock: 250,
      perUserLimit: 1,
      startsAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const buyer = await token('page-buyer');
    const late = await token('page-late-buyer');
    assert.equal((await buy(api, soldOut, buyer, uid('k'), 3)).status, 201);
    // The sale: a unit every ~150 ms, and buyers refused on the other two SKUs.
    sale = (async () => {
      let n = 0;
      while (saleRunning) {
        const r = await buy(api, selling, buyer, uid('k'));
        assert.equal(r.status, 201, JSON.stringify(r.body));
        if (n % 3 === 0) await buy(api, soldOut, late, uid('k'));
        if (n % 5 === 0) await buy(api, scheduled, late, uid('k'));
        n++;
        await sleep(150);
      }
      return n;
    })();

    profile = mkdtempSync(join(tmpdir(), 'live-page-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 800 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401|Unauthorized/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
  });

  after(async () => {
    saleRunning = false;
    await sale?.catch(() => undefined);
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (!apiStopped) await api?.stop();
  });

  const availableOf = (sku: string) =>
    page.locator(`[data-sku="${sku}"] [data-field="available"]`).textContent();

  it('asks for the token, says when it is refused, then shows the sale live', async () => {
    await page.goto(`${api.url}/admin/live?sku=${selling},${soldOut},${scheduled}`);
    await page.locator('#token').waitFor({ state: 'visible' });

    await page.fill('#token', 'not-the-admin-token');
    await page.click('#login button[type=submit]');
    await page.locator('#banner').waitFor({ state: 'visible' });
    assert.match((await page.locator('#banner').textContent()) ?? '', /token was refused/);
    assert.ok(await page.locator('#token').isVisible(), 'asks again');

    await page.fill('#token', api.engine.cfg.ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    const card = page.locator(`[data-sku="${selling}"]`);
    await card.waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.locator('#conn-text').textContent(), 'live');
    assert.ok(await page.locator('#banner').isHidden(), 'no banner while live');
    assert.equal(
      await page.evaluate("sessionStorage.getItem('flashsale.adminToken')"),
      api.engine.cfg.ADMIN_TOKEN,
      'the token is kept in the tab',
    );

    // Units left move as the sale runs.
    const first = await availableOf(selling);
    assert.match(first ?? '', /^\d[\d,]*$/);
    const later = await until(
      'units left to change',
      async () => {
        const now = await availableOf(selling);
        return now !== first ? Number(now!.replace(/,/g, '')) : undefined;
      },
      10_000,
    );
    assert.ok(later < Number(first!.replace(/,/g, '')), `units left went down from ${first}`);

    assert.equal(await availableOf(soldOut), '0');
    assert.equal(await page.locator(`[data-sku="${soldOut}"] .badge`).textContent(), 'sold out');
    assert.equal(await page.locator(`[data-sku="${scheduled}"] .badge`).textContent(), 'scheduled');
    await until(
      'the sold-out refusals on the page',
      async () => {
        const text = await page
          .locator(`[data-sku="${soldOut}"] [data-field="refusals"]`)
          .textContent();
        return /SOLD_OUT \d/.test(text ?? '') || undefined;
      },
      10_000,
    );
    // Let a rate and the refusals settle into the picture.
    await sleep(1500);
    await page.screenshot({ path: join(outputDir, 'live-page.png'), fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(300);
    await page.screenshot({ path: join(outputDir, 'live-page-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    assert.deepEqual(problems, [], 'no script error and no content-security-policy violation');
  });

  it('shows a banner when the stream drops', async () => {
    saleRunning = false;
    await sale;
    // Shutting the API down ends its event streams.
    apiStopped = true;
    await api.stop();
    await page.locator('#banner').waitFor({ state: 'visible', timeout: 10_000 });
    assert.match((await page.locator('#banner').textContent()) ?? '', /Reconnecting/);
    assert.equal(await page.locator('#conn-text').textContent(), 'disconnected');
    await page.screenshot({ path: join(outputDir, 'live-page-disconnected.png') });
  });
});
