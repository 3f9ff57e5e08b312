// Redis losing its data (FLUSHALL: what a restart without persistence or a bad failover
// looks like), on a redis-server of the test's own: SKUs answer 503 until rebuilt from
// PostgreSQL, the pipeline recreates what it kept in Redis (consumer groups, leases) and
// moves, retries of purchases PostgreSQL knows replay them, and both stores end equal.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  buy,
  createSku,
  skuInPartition,
  startApi,
  startEngine,
  token,
  uid,
  waitForDrain,
  type RunningApi,
} from '../helpers.js';
import { ownRedis, type OwnRedis } from '../support/redis-server.js';

/** Retries while the SKU is being rebuilt (503), as a client following Retry-After would. */
async function buyThroughRebuild(
  api: RunningApi,
  sku: string,
  jwt: string,
  key: string,
  quantity = 1,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await buy(api, sku, jwt, key, quantity);
    if (r.status !== 503 || Date.now() > deadline) return r;
    await sleep(200);
  }
}

describe('Redis loses its data', () => {
  let redis: OwnRedis;
  let api: RunningApi;
  before(async () => {
    redis = await ownRedis();
    api = await startEngine(['writer', 'relay', 'sweeper', 'api'], {
      REDIS_URL: redis.url,
      SWEEP_INTERVAL_MS: '200',
    });
  });
  after(async () => {
    await api?.stop();
    await redis?.close();
  });

  it('the pipeline moves again after FLUSHALL and a retried key replays its order', async () => {
    const a = uid('loss');
    const b = skuInPartition(api.engine.keys, api.engine.keys.partitionOf(a), 'lossb');
    await createSku(api, { sku: a, stock: 50, perUserLimit: 5 });
    await createSku(api, { sku: b, stock: 50, perUserLimit: 5 });
    const jwt = await token('loss-user');
    const first = await buy(api, a, jwt, 'loss-key-1', 2);
    assert.equal(first.status, 201);
    await buy(api, b, jwt, 'loss-key-2', 1);
    await waitForDrain(api.engine, [a, b]);

    await api.engine.redis.flushall();

    const retried = await buyThroughRebuild(api, a, jwt, 'loss-key-1', 2);
    assert.equal(retried.status, 201, JSON.stringify(retried.body));
    assert.equal(retried.replayed, true, 'the retry replays the order PostgreSQL has');
    assert.equal(retried.body.orderId, first.body.orderId);

    const after1 = await buyThroughRebuild(api, a, jwt, 'loss-key-3', 1);
    assert.equal(after1.status, 201);
    const after2 = await buyThroughRebuild(api, b, jwt, 'loss-key-4', 1);
    assert.equal(after2.status, 201, 'the neighbour SKU of the same partition is rebuilt too');
    const [ca, cb] = await waitForDrain(api.engine, [a, b], 30_000);
    assert.equal(ca!.sku, a);
    assert.equal(ca!.drift, 0);
    assert.equal(cb!.drift, 0);
    assert.equal(ca!.conservationGap, 0);
    assert.equal(cb!.conservationGap, 0);
    const rows = await api.engine.db.order.findMany({ where: { skuId: { in: [a, b] } } });
    assert.equal(rows.length, 4, 'every order, before and after the loss, is in PostgreSQL once');
    assert.equal(ca!.db.available, 50 - 3);
    assert.equal(cb!.db.available, 50 - 2);
  });

  // Two paths to one answer: on a single node the script claims the key itself (one round
  // trip); on a cluster the claim is a call of its own before the script (two).
  for (const path of ['claim in the script', 'claim before the script'] as const)
    it(`a retry whose claim the rebuild restores while it is in flight replays, never buys again (${path})`, async () => {
      const twoCalls = path === 'claim before the script';
      const sku = uid('claimrace');
      const user = `claimrace-user-${twoCalls ? 2 : 1}`; // a claim is a user's, whatever the SKU
      await createSku(api, { sku, stock: 10, perUserLimit: 5 });
      const jwt = await token(user);
      const first = await buy(api, sku, jwt, 'claimrace-key', 1);
      assert.equal(first.status, 201);
      await waitForDrain(api.engine, [sku]);
      await api.engine.redis.flushall();

      // The retry is held just before its purchase script (having claimed its key, on the
      // two-call path: the claim was lost, so it claims a fresh order id) while the rebuild
      // restores the claim to the order PostgreSQL has and loads the SKU: the interleaving
      // of one unlucky round trip.
      const buyer = twoCalls
        ? await startApi({ REDIS_URL: redis.url }, { claimInScript: false })
        : api;
      type Fn = (this: unknown, ...a: unknown[]) => unknown;
      const command = 'fsPurchase';
      const client = buyer.engine.redis as unknown as Record<typeof command, Fn>;
      const original = client[command];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let held = false;
      // Auto-pipelining copies the method onto its pipeline and calls it there: pass through.
      client[command] = async function (this: unknown, ...args: unknown[]) {
        if (this === client && !held) {
          held = true;
          await gate;
        }
        return original.apply(this, args);
      };
      try {
        const retry = buy(buyer, sku, jwt, 'claimrace-key', 1);
        const claimKey = api.engine.keys.idempotencyClaim(user, 'claimrace-key');
        const skuKey = api.engine.keys.forSku(sku).sku;
        const deadline = Date.now() + 30_000;
        while (!(held && (await api.engine.redis.exists(skuKey)))) {
          assert.ok(Date.now() < deadline, 'the SKU was rebuilt');
          await fetch(`${api.url}/v1/skus/${sku}`, { headers: api.admin });
          await sleep(100);
        }
        assert.match(String(await api.engine.redis.get(claimKey)), new RegExp(first.body.orderId));
        release();
        const got = await retry;
        assert.equal(got.status, 201, JSON.stringify(got.body));
        assert.equal(got.body.orderId, first.body.orderId, 'the retry answers the original order');
        assert.equal(got.replayed, true);
      } finally {
        client[command] = original;
        release();
        if (buyer !== api) await buyer.stop();
      }
      const [c] = await waitForDrain(api.engine, [sku], 30_000);
      assert.equal(c!.db.available, 9, 'one unit sold for one key');
      const rows = await api.engine.db.order.findMany({ where: { skuId: sku } });
      assert.equal(rows.length, 1);
    });

  it('FLUSHALL mid-load: no oversell, every order acknowledged after the rebuild reaches PostgreSQL, stores agree', async () => {
    const skus = [uid('lml'), uid('lml'), uid('lml')];
    // Enough units and a loose limit that purchases still succeed after the rebuild.
    for (const sku of skus) await createSku(api, { sku, stock: 20_000, perUserLimit: 1000 });
    const users = Array.from({ length: 80 }, (_, i) => `lml${i}`);
    const jwts = await Promise.all(users.map((u) => token(u)));
    const accepted: { orderId: string; sku: string; at: number }[] = [];
    let flushedAt = 0;
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const sku = skus[(w + i) % skus.length]!;
        const r = await buy(api, sku, jwts[(w * 7 + i) % jwts.length]!, `lml-${w}-${i}`, 1);
        if (r.status === 201) accepted.push({ orderId: r.body.orderId, sku, at: Date.now() });
        else assert.ok([409, 503].includes(r.status), `${r.status} ${JSON.stringify(r.body)}`);
        if (r.status === 503) await sleep(50);
      }
    };
    const load = Promise.all(Array.from({ length: 10 }, (_, w) => worker(w)));
    await sleep(1500);
    await api.engine.redis.flushall();
    flushedAt = Date.now();
    await sleep(4000);
    stop = true;
    await load;

    const compared = await waitForDrain(api.engine, skus, 60_000);
    const rows = await api.engine.db.order.findMany({ where: { skuId: { in: skus } } });
    const inDb = new Set(rows.map((r) => r.id));
    for (const c of compared) {
      assert.equal(c.drift, 0, `${c.sku}: Redis and PostgreSQL agree`);
      assert.equal(c.conservationGap, 0, `${c.sku}: available + held == supplied`);
      assert.ok(c.db.available >= 0);
    }
    // Acknowledged after the loss was seen (1 s of margin): in PostgreSQL, each once.
    const late = accepted.filter((o) => o.at > flushedAt + 1000);
    assert.ok(late.length > 0, 'purchases went on after the rebuild');
    for (const o of late) assert.ok(inDb.has(o.orderId), `order ${o.orderId} reached PostgreSQL`);
    assert.equal(inDb.size, rows.length);
  });
});
