// Reconciliation and alert webhooks against the real services and a real HTTP receiver.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { IncidentStore, StaleLeaderError } from '../../src/alerts/incidents.js';
import {
  signedHeaders,
  verifyWebhook,
  WebhookVerificationError,
} from '../../src/alerts/signing.js';
import { reconcilePasses } from '../../src/shared/metrics.js';
import { compareSkus } from '../../src/reconcile/compare.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { createRedlock, Leadership } from '../../src/clients/locks.js';
import {
  buy,
  createSku,
  post,
  startEngine,
  testConfig,
  token,
  uid,
  until as untilPolled,
  waitForDrain,
  type RunningApi,
} from '../helpers.js';
import { alertReceiver as receiver } from '../support/alert-receiver.js';

/** Webhook arrivals are checked every 50 ms. */
const until = <T>(what: string, fn: () => T | undefined, timeoutMs: number) =>
  untilPolled(what, fn, timeoutMs, 50);

describe('reconciliation and alert webhooks', () => {
  const cfg = testConfig();
  const interval = 500;
  let rx: Awaited<ReturnType<typeof receiver>>;
  let engine: RunningApi;
  before(async () => {
    rx = await receiver(cfg.ALERT_WEBHOOK_SECRET);
    engine = await startEngine(['api', 'relay', 'writer', 'reconciler'], settings());
    await settled();
  });
  after(async () => {
    await engine.stop();
    await rx.close();
  });

  const settings = () => ({
    RECONCILE_INTERVAL_MS: String(interval),
    ALERT_WEBHOOK_URLS: rx.url,
    WEBHOOK_BASE_BACKOFF_MS: '100',
    LAG_ALERT_AFTER_MS: '1500',
    REPAIR_ENABLED: 'true',
  });
  /**
   * The database may hold findings from before this test (SKUs whose Redis state is gone):
   * wait until their incidents are opened and delivered, so the timings below measure
   * only what each test does.
   */
  const settled = async () => {
    const passes = async () =>
      (await reconcilePasses.get()).values.reduce((n, v) => n + v.value, 0);
    const start = await passes();
    let quiet = 0;
    const deadline = Date.now() + 60_000;
    while ((quiet < 4 || (await passes()) < start + 3) && Date.now() < deadline) {
      const pending = await engine.engine.db.webhookDelivery.count({
        where: { status: 'pending' },
      });
      quiet = pending === 0 ? quiet + 1 : 0;
      await sleep(interval / 2);
    }
  };
  const forSku = (sku: string, type: string, kind?: string) => () =>
    rx.got.find((g) => g.data.sku === sku && g.type === type && (!kind || g.data.kind === kind));

  // Callers take the comparisons by position (`const [ca, cb] = ...`): PostgreSQL's row
  // order (index order here, page order elsewhere) must not leak into the answer.
  it('comparisons come back in the order the SKUs were asked for', async () => {
    const low = `a-${uid('order')}`;
    const high = `z-${uid('order')}`;
    await createSku(engine, { sku: low, stock: 1, perUserLimit: 1 });
    await createSku(engine, { sku: high, stock: 2, perUserLimit: 1 });
    const e = engine.engine;
    const asked = [high, uid('unknown'), low];
    const got = await compareSkus(e.redis, e.db, e.keys, asked);
    assert.deepEqual(
      got.map((c) => c.sku),
      [high, low],
    );
  });

  it('Redis stock changed behind the engine: one signed DRIFT alert naming both numbers, then resolved', async () => {
    const sku = uid('drift-r');
    await createSku(engine, { sku, stock: 10, perUserLimit: 5 });
    const jwt = await token('dr1');
    for (let i = 0; i < 3; i++)
      assert.equal((await buy(engine, sku, jwt, `${sku}-${i}`, 1)).status, 201);
    await waitForDrain(engine.engine, [sku]);
    const k = engine.engine.keys.forSku(sku);
    const changed = Date.now();
    await engine.engine.redis.hset(k.sku, 'available', 42);
    const opened = await until(
      'incident.opened',
      forSku(sku, 'incident.opened', 'DRIFT'),
      interval * 2 + 4000,
    );
    assert.ok(opened.at - changed <= interval * 2 + 4000);
    assert.equal(opened.data.redis.available, 42);
    assert.equal(opened.data.db.available, 7);
    assert.equal(opened.data.redis.sequence, opened.data.db.sequence);
    await sleep(interval * 3);
    assert.equal(
      rx.got.filter((g) => g.data.sku === sku && g.type === 'incident.opened').length,
      1,
      'one incident, not one per pass',
    );
    const alerts = (await (
      await fetch(`${engine.url}/v1/admin/alerts`, { headers: engine.admin })
    ).json()) as { open: { sku: string; kind: string }[] };
    assert.ok(alerts.open.some((a) => a.sku === sku && a.kind === 'DRIFT'));
    const live = (await (
      await fetch(`${engine.url}/v1/admin/skus/${sku}/reconciliation`, { headers: engine.admin })
    ).json()) as { drift: number; lag: number };
    assert.equal(live.drift, 35);
    assert.equal(live.lag, 0);

    await engine.engine.redis.hset(k.sku, 'available', 7);
    const resolved = await until(
      'incident.resolved',
      forSku(sku, 'incident.resolved', 'DRIFT'),
      interval * 2 + 4000,
    );
    assert.notEqual(resolved.id, opened.id);
  });

  it('a PostgreSQL row changed behind the engine: DRIFT and CONSERVATION alerts, resolved once fixed', async () => {
    const sku = uid('drift-p');
    await createSku(engine, { sku, stock: 10, perUserLimit: 5 });
    assert.equal((await buy(engine, sku, await token('dp1'), `${sku}-1`, 2)).status, 201);
    await waitForDrain(engine.engine, [sku]);
    await engine.engine.db.$executeRaw`UPDATE skus SET available = available - 3 WHERE id = ${sku}`;
    const drift = await until(
      'DRIFT',
      forSku(sku, 'incident.opened', 'DRIFT'),
      interval * 2 + 4000,
    );
    assert.equal(drift.data.redis.available, 8);
    assert.equal(drift.data.db.available, 5);
    await until(
      'CONSERVATION',
      forSku(sku, 'incident.opened', 'CONSERVATION'),
      interval * 2 + 4000,
    );
    // Fixing PostgreSQL resolves both.
    await engine.engine.db.$executeRaw`UPDATE skus SET available = available + 3 WHERE id = ${sku}`;
    await until('DRIFT resolved', forSku(sku, 'incident.resolved', 'DRIFT'), interval * 2 + 4000);
    await until(
      'CONSERVATION resolved',
      forSku(sku, 'incident.resolved', 'CONSERVATION'),
      interval * 2 + 4000,
    );
  });

  it('repair rebuilds Redis from PostgreSQL under a pause, and resumes', async () => {
    const sku = uid('repair');
    await createSku(engine, { sku, stock: 10, perUserLimit: 5 });
    const jwt = await token('rp1');
    assert.equal((await buy(engine, sku, jwt, `${sku}-1`, 2)).status, 201);
    await waitForDrain(engine.engine, [sku]);
    const k = engine.engine.keys.forSku(sku);
    await engine.engine.redis.hset(k.sku, 'available', 99);
    const res = await fetch(`${engine.url}/v1/admin/skus/${sku}/repair`, {
      method: 'POST',
      headers: engine.admin,
    });
    const body = (await res.json()) as { available: number };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.available, 8);
    assert.equal((await buy(engine, sku, jwt, `${sku}-2`, 1)).status, 201, 'sales resumed');
    const [c] = await waitForDrain(engine.engine, [sku]);
    assert.equal(c!.drift, 0);
    assert.equal(c!.db.available, 7);
  });

  it('a stopped DB writer raises LAG; restarted, it resolves', async () => {
    const sku = uid('lag');
    const writerLess = await startEngine(['api'], {});
    await engine.stop(); // the shared engine's writer too: no writer anywhere
    const reconcilerOnly = await startEngine(['relay', 'reconciler'], {
      RECONCILE_INTERVAL_MS: String(interval),
      ALERT_WEBHOOK_URLS: rx.url,
      WEBHOOK_BASE_BACKOFF_MS: '100',
      LAG_ALERT_AFTER_MS: '1500',
    });
    try {
      await createSku(writerLess, { sku, stock: 10, perUserLimit: 5 });
      assert.equal((await buy(writerLess, sku, await token('lg1'), `${sku}-1`, 1)).status, 201);
      const lag = await until(
        'LAG',
        forSku(sku, 'incident.opened', 'LAG'),
        1500 + interval * 2 + 6000,
      );
      assert.ok((lag.data.redis.sequence ?? 0) > (lag.data.db.sequence ?? 0));
      engine = await startEngine(['api', 'relay', 'writer', 'reconciler'], settings());
      await until('LAG resolved', forSku(sku, 'incident.resolved', 'LAG'), 30000);
    } finally {
      await reconcilerOnly.stop();
      await writerLess.stop();
    }
  });

  it('a receiver answering 500 gets the alert once it is back, with the same webhook-id', async () => {
    const sku = uid('retry');
    await createSku(engine, { sku, stock: 5, perUserLimit: 5 });
    await waitForDrain(engine.engine, [sku]);
    const before = rx.attempts.length;
    rx.failTimes(3);
    await engine.engine.redis.hset(engine.engine.keys.forSku(sku).sku, 'available', 1);
    const got = await until(
      'delivery after failures',
      forSku(sku, 'incident.opened', 'DRIFT'),
      30000,
    );
    const tries = rx.attempts.slice(before).filter((id) => id === got.id);
    assert.ok(tries.length >= 4, `same webhook-id on every try (${tries.length})`);
    // The receiver has answered; the dispatcher records it when its transaction commits.
    let row = await engine.engine.db.webhookDelivery.findFirst({ where: { messageId: got.id } });
    for (let i = 0; row?.status === 'pending' && i < 50; i++) {
      await sleep(100);
      row = await engine.engine.db.webhookDelivery.findFirst({ where: { messageId: got.id } });
    }
    assert.equal(row?.status, 'delivered');
    assert.ok((row?.attempts ?? 0) >= 4);
    await engine.engine.redis.hset(engine.engine.keys.forSku(sku).sku, 'available', 5);
  });

  it('verifyWebhook refuses a tampered body, an old timestamp and a wrong secret; accepts a rotated key', () => {
    const secret = cfg.ALERT_WEBHOOK_SECRET;
    const body = JSON.stringify({ type: 'incident.opened', data: { sku: 's' } });
    const h = signedHeaders(secret, 'msg_1', body);
    assert.deepEqual(verifyWebhook(body, { ...h }, secret), JSON.parse(body));
    assert.throws(
      () => verifyWebhook(body.replace('"s"', '"t"'), { ...h }, secret),
      WebhookVerificationError,
    );
    const old = signedHeaders(secret, 'msg_1', body, Date.now() - 10 * 60_000);
    assert.throws(() => verifyWebhook(body, { ...old }, secret), /timestamp/);
    assert.throws(
      () =>
        verifyWebhook(body, { ...h }, 'whsec_' + Buffer.from('another secret').toString('base64')),
      /no matching signature/,
    );
    assert.throws(() => verifyWebhook(body, { 'webhook-id': 'msg_1' }, secret), /missing/);
    const next = 'whsec_' + Buffer.from('the next secret').toString('base64');
    const both = {
      ...h,
      'webhook-signature': `${signedHeaders(next, 'msg_1', body)['webhook-signature']} ${h['webhook-signature']}`,
    };
    assert.ok(verifyWebhook(body, both, [next]));
    assert.ok(verifyWebhook(body, both, secret));
  });

  it('an endpoint answering 410 is disabled and gets nothing more', async () => {
    const gone = await receiver(cfg.ALERT_WEBHOOK_SECRET);
    gone.answer(410);
    const other = await startEngine(['reconciler'], {
      RECONCILE_INTERVAL_MS: String(interval),
      ALERT_WEBHOOK_URLS: gone.url,
      WEBHOOK_BASE_BACKOFF_MS: '100',
    });
    try {
      const store = new IncidentStore(other.engine.db, () => [gone.url]);
      const sku = uid('gone');
      await store.open({
        skuId: sku,
        kind: 'DRIFT',
        redisAvailable: 1,
        dbAvailable: 2,
        redisSequence: 1,
        dbSequence: 1,
        detail: {},
      });
      await until('410 answer', () => (gone.attempts.length > 0 ? true : undefined), 10000);
      const deadline = Date.now() + 5000;
      let disabled = null;
      while (!disabled && Date.now() < deadline) {
        disabled =
          (await other.engine.db.webhookEndpoint.findUnique({ where: { url: gone.url } }))
            ?.disabledAt ?? null;
        await sleep(100);
      }
      assert.ok(disabled, 'endpoint disabled');
      await store.resolve(sku, 'DRIFT');
      await sleep(1000);
      assert.equal(gone.attempts.length, 1, 'nothing sent after the 410');
    } finally {
      await other.stop();
      await gone.close();
    }
  });

  it('two reconcilers: one leads; when it dies the other leads within one lease, and the old one is fenced off', async () => {
    const resource = `fs:leader:${uid('rec')}`;
    const lease = 1000;
    const make = () =>
      new Reconciler(
        engine.engine.redis,
        engine.engine.db,
        engine.engine.keys,
        new IncidentStore(engine.engine.db, () => []),
        new Leadership(createRedlock(engine.engine.redis), resource, lease),
        { intervalMs: 200, lagAlertAfterMs: 60000 },
        engine.engine.log,
      );
    const a = make();
    const b = make();
    const [ra, rb] = await Promise.all([a.pass(), b.pass()]);
    assert.equal(Number(ra.led) + Number(rb.led), 1, 'exactly one leads');
    const [leader, follower] = ra.led ? [a, b] : [b, a];
    assert.equal((await leader.pass()).led, true);
    // The leader dies: it stops renewing. The follower leads within one lease.
    const died = Date.now();
    let led = false;
    let tookOverAt = 0;
    while (!led && Date.now() - died < lease * 3) {
      tookOverAt = Date.now(); // a pass takes the lease first, then compares (which takes a while)
      led = (await follower.pass()).led;
      if (!led) await sleep(100);
    }
    assert.ok(led);
    assert.ok(tookOverAt - died <= lease + 300, `took over after ${tookOverAt - died} ms`);
    // A write with an older term's token is refused by PostgreSQL.
    const store = new IncidentStore(engine.engine.db, () => []);
    const fence = await engine.engine.db.reconcilerFence.findUniqueOrThrow({ where: { id: 1 } });
    await assert.rejects(
      store.open(
        {
          skuId: uid('fenced'),
          kind: 'DRIFT',
          redisAvailable: 0,
          dbAvailable: 0,
          redisSequence: 0,
          dbSequence: 0,
          detail: {},
        },
        fence.token - 1n,
      ),
      StaleLeaderError,
    );
    await leader.stop();
    await follower.stop();
  });

  it(
    'no false alarm: 60 s of purchases and cancels with a pass every second',
    { timeout: 120_000 },
    async () => {
      const steady = await startEngine(['reconciler'], {
        RECONCILE_INTERVAL_MS: '1000',
        ALERT_WEBHOOK_URLS: rx.url,
        LAG_ALERT_AFTER_MS: '5000',
      });
      try {
        const skus = Array.from({ length: 5 }, () => uid('steady'));
        for (const sku of skus) await createSku(engine, { sku, stock: 100000, perUserLimit: 1000 });
        const jwts = await Promise.all(Array.from({ length: 50 }, (_, i) => token(`st${i}`)));
        const end = Date.now() + 60_000;
        let n = 0;
        while (Date.now() < end) {
          await Promise.all(
            Array.from({ length: 20 }, async (_, j) => {
              n += 1;
              const r = await buy(engine, skus[j % 5]!, jwts[j]!, `${skus[0]}-${n}`, 1);
              if (r.status === 201 && n % 3 === 0)
                await post(engine, `/v1/orders/${r.body.orderId}/cancel`, jwts[j]!);
            }),
          );
          await sleep(50);
        }
        await waitForDrain(engine.engine, skus);
        await sleep(2000);
        const incidents = await engine.engine.db.alertIncident.findMany({
          where: { skuId: { in: skus } },
        });
        assert.deepEqual(incidents, [], 'no incident under normal load');
        assert.equal(rx.got.filter((g) => skus.includes(g.data.sku)).length, 0);
        assert.ok(n > 1000, `${n} purchases`);
      } finally {
        await steady.stop();
      }
    },
  );
});
