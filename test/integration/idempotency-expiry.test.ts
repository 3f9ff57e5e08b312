// An Idempotency-Key is remembered for IDEMPOTENCY_TTL_SECONDS. Reused after that it is a
// new purchase: a new order, recorded in both stores. And no reservation may outlive the
// memory of its key, or a late retry would buy twice.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/shared/config.js';
import {
  buy,
  createSku,
  startEngine,
  testConfig,
  token,
  uid,
  until,
  waitForDrain,
  type RunningApi,
} from '../helpers.js';

describe('Idempotency-Key expiry', () => {
  let api: RunningApi;
  before(async () => {
    api = await startEngine(['writer', 'relay', 'api']);
  });
  after(() => api.stop());

  it('a key reused after it expired makes a new order, recorded in both stores', async () => {
    const sku = uid('idx');
    await createSku(api, { sku, stock: 10, perUserLimit: 5 });
    const user = uid('idxu').replace(/-/g, '_');
    const jwt = await token(user);
    const first = await buy(api, sku, jwt, 'same-key', 1);
    assert.equal(first.status, 201);
    // The key's time passes: its claim lapses exactly as its TTL would make it.
    const claim = api.engine.keys.idempotencyClaim(user, 'same-key');
    assert.equal(await api.engine.redis.pexpire(claim, 1), 1);
    await new Promise((r) => setTimeout(r, 20));
    const second = await buy(api, sku, jwt, 'same-key', 1);
    assert.equal(second.status, 201);
    assert.equal(second.replayed, false);
    assert.notEqual(second.body.orderId, first.body.orderId);

    const [c] = await waitForDrain(api.engine, [sku]);
    assert.equal(c!.drift, 0);
    assert.equal(c!.conservationGap, 0);
    const rows = await api.engine.db.order.findMany({ where: { skuId: sku } });
    assert.deepEqual(
      rows.map((r) => r.id).sort(),
      [first.body.orderId, second.body.orderId].sort(),
      'both orders have their row',
    );
    const anomalies = await api.engine.db.pipelineAnomaly.count({ where: { skuId: sku } });
    assert.equal(anomalies, 0);
  });

  it('a key reused after it expired is a new order, while a rebuild remembers younger keys', async () => {
    // A rebuild restores the claims of a SKU's recent orders and remembers them together
    // (a purchase racing the rebuild checks that memory) for as long as the youngest claim
    // lives. An older key's claim runs out first; reused after that, it must buy anew, not
    // replay the old order from that memory (found by the model-based soak, seed 20261217:
    // createSku, buy, flush-redis, forgetLastKey).
    const e = api.engine;
    const sku = uid('idr');
    await createSku(api, { sku, stock: 10, perUserLimit: 5 });
    const [old, young] = [uid('idro'), uid('idry')].map((u) => u.replace(/-/g, '_'));
    const first = await buy(api, sku, await token(old!), 'old-key', 1);
    const other = await buy(api, sku, await token(young!), 'young-key', 1);
    assert.equal(first.status, 201);
    assert.equal(other.status, 201);
    await waitForDrain(e, [sku]);
    // The old key has 2 s of memory left when Redis loses the SKU; the young one a whole TTL.
    const ttlMs = e.cfg.IDEMPOTENCY_TTL_SECONDS * 1000;
    await e.db.order.update({
      where: { id: first.body.orderId },
      data: { createdAt: new Date(Date.now() - ttlMs + 2000) },
    });
    const k = e.keys.forSku(sku);
    await e.redis.del(k.sku, k.users);
    await until(
      'the SKU rebuilt',
      async () => {
        const res = await fetch(`${api.url}/v1/skus/${sku}`, { headers: api.admin });
        return res.status === 200 || undefined;
      },
      30_000,
    );
    // A restored claim and the rebuild's memory of it end at one instant, in Redis's time.
    const youngClaim = e.keys.idempotencyClaim(young!, 'young-key');
    const remembered = await e.redis.hget(k.restoredClaims, youngClaim);
    const claimEnd = Number(await e.redis.call('PEXPIRETIME', youngClaim));
    assert.equal(`${other.body.orderId}|${claimEnd}`, remembered);
    await new Promise((r) => setTimeout(r, 3000));
    const claim = e.keys.idempotencyClaim(old!, 'old-key');
    assert.equal(await e.redis.exists(claim), 0, 'the old key ran out');
    const again = await buy(api, sku, await token(old!), 'old-key', 1);
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.replayed, false);
    assert.notEqual(again.body.orderId, first.body.orderId);
  });

  it('a reservation cannot outlive its key: TTLs beyond the key memory are refused', async () => {
    const res = await fetch(`${api.url}/v1/admin/skus`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify({
        sku: uid('idxt'),
        name: 'long hold',
        stock: 1,
        perUserLimit: 1,
        reservationTtlSeconds: testConfig().IDEMPOTENCY_TTL_SECONDS + 1,
      }),
    });
    assert.equal(res.status, 400);
    assert.throws(
      () =>
        loadConfig({
          NODE_ENV: 'test',
          IDEMPOTENCY_TTL_SECONDS: '3600',
          DEFAULT_RESERVATION_TTL_SECONDS: '7200',
        }),
      /DEFAULT_RESERVATION_TTL_SECONDS/,
    );
  });
});
