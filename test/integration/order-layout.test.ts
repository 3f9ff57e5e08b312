// An order is one string in Redis (orderValue in src/shared/keys.ts). Orders an older
// engine wrote are hashes of the same fields, and they may still be live when the new engine
// starts: each is replayed, read, confirmed, cancelled and expired as before, in its own
// layout, with units back exactly once.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../../src/shared/errors.js';
import { orderValue, parseOrder } from '../../src/shared/keys.js';
import type { Engine } from '../../src/engine.js';
import { redisState, startApi, uid, type RunningApi } from '../helpers.js';

/** Rewrites an order as the hash an engine before the string layout wrote, TTL kept. */
async function asOlderEngineWrote(engine: Engine, sku: string, orderId: string): Promise<void> {
  const key = engine.keys.forSku(sku).order(orderId);
  const o = parseOrder((await engine.redis.get(key))!)!;
  const ttl = await engine.redis.pttl(key);
  await engine.redis
    .multi()
    .del(key)
    .hset(key, {
      user: o.user,
      sku: o.sku,
      quantity: o.quantity,
      status: o.status,
      createdAt: o.createdAt,
      expiresAt: o.expiresAt,
    })
    .exec();
  if (ttl > 0) await engine.redis.pexpire(key, ttl);
}

describe('order layout', () => {
  let single: RunningApi;
  let cluster: RunningApi;
  const run = uid('ol');
  const user = (name: string) => `${run}-${name}`;
  before(async () => {
    single = await startApi({}, { claimInScript: true });
    cluster = await startApi({}, { claimInScript: false });
  });
  after(async () => {
    await single?.stop();
    await cluster?.stop();
  });
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (e instanceof AppError ? e.code : String(e)),
    );

  it('a purchase writes its order as one string of six fields', async () => {
    const e = single.engine;
    const sku = uid('ols');
    await e.inventory.createSku({ sku, name: sku, stock: 5, perUserLimit: 5 });
    const { order } = await e.inventory.purchase(user('a'), sku, 2, 'k1');
    const key = e.keys.forSku(sku).order(order.orderId);
    assert.equal(await e.redis.type(key), 'string');
    assert.equal(
      await e.redis.get(key),
      orderValue({
        user: user('a'),
        sku,
        quantity: 2,
        status: 'reserved',
        createdAt: Date.parse(order.createdAt),
        expiresAt: Date.parse(order.expiresAt),
      }),
    );
    const confirmed = await e.inventory.confirm(user('a'), order.orderId);
    assert.equal(confirmed.status, 'confirmed');
    assert.equal(parseOrder((await e.redis.get(key))!)?.status, 'confirmed');
    const ttl = await e.redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= e.cfg.ORDER_RETENTION_SECONDS, `retention ttl ${ttl}`);
  });

  it("an older engine's hash order is replayed, read, refused for another body, and confirmed", async () => {
    const sku = uid('olh');
    await single.engine.inventory.createSku({ sku, name: sku, stock: 10, perUserLimit: 10 });
    const first = await single.engine.inventory.purchase(user('b'), sku, 3, 'k1');
    await asOlderEngineWrote(single.engine, sku, first.order.orderId);
    const stateBefore = await redisState(single.engine, sku);

    for (const api of [single, cluster]) {
      const again = await api.engine.inventory.purchase(user('b'), sku, 3, 'k1');
      assert.equal(again.replayed, true);
      assert.deepEqual(again.order, first.order);
      assert.deepEqual(await api.engine.inventory.getOrder(undefined, first.order.orderId), {
        ...first.order,
      });
      assert.equal(
        await code(api.engine.inventory.getOrder(user('other'), first.order.orderId)),
        'ORDER_NOT_FOUND',
      );
      assert.equal(
        await code(api.engine.inventory.purchase(user('b'), sku, 1, 'k1')),
        'IDEMPOTENCY_KEY_REUSED',
      );
    }
    assert.deepEqual(await redisState(single.engine, sku), stateBefore, 'replays changed nothing');

    const confirmed = await cluster.engine.inventory.confirm(user('b'), first.order.orderId);
    const afterConfirm = await redisState(single.engine, sku);
    assert.deepEqual(
      { ...afterConfirm, seq: stateBefore.seq },
      stateBefore,
      'the units stay held, one event more',
    );
    assert.equal(afterConfirm.seq, stateBefore.seq + 1);
    assert.equal(confirmed.status, 'confirmed');
    const key = single.engine.keys.forSku(sku).order(first.order.orderId);
    assert.equal(await single.engine.redis.type(key), 'hash', 'kept in its own layout');
    assert.equal(await single.engine.redis.hget(key, 'status'), 'confirmed');
    assert.ok((await single.engine.redis.ttl(key)) > 0, 'kept for the retention window');
    // Confirming again replays and changes nothing.
    assert.equal(
      (await single.engine.inventory.confirm(user('b'), first.order.orderId)).status,
      'confirmed',
    );
    assert.deepEqual(await redisState(single.engine, sku), afterConfirm);
  });

  it("racing cancels of an older engine's hash order put its units back once", async () => {
    const e = single.engine;
    const sku = uid('olc');
    await e.inventory.createSku({ sku, name: sku, stock: 10, perUserLimit: 10 });
    const { order } = await e.inventory.purchase(user('c'), sku, 4, 'k1');
    await asOlderEngineWrote(e, sku, order.orderId);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? cluster : single).engine.inventory.cancel(user('c'), order.orderId),
      ),
    );
    assert.ok(results.every((r) => r.status === 'fulfilled' && r.value.status === 'cancelled'));
    const state = await redisState(e, sku);
    assert.equal(state.available, 10, 'the four units came back once');
    assert.equal(state.users[user('c')] ?? 0, 0);
    assert.equal(state.available + Object.values(state.users).reduce((a, b) => a + b, 0), 10);
    assert.equal(
      await e.redis.hget(e.keys.forSku(sku).order(order.orderId), 'status'),
      'cancelled',
    );
  });

  it("an older engine's hash reservation expires once, and its units go back", async () => {
    const e = single.engine;
    const sku = uid('olx');
    await e.inventory.createSku({
      sku,
      name: sku,
      stock: 6,
      perUserLimit: 6,
      reservationTtlSeconds: 1,
    });
    const { order } = await e.inventory.purchase(user('d'), sku, 2, 'k1');
    await asOlderEngineWrote(e, sku, order.orderId);
    assert.equal(await e.inventory.expire(sku, order.orderId), 'kept', 'not due yet');
    await sleep(Date.parse(order.expiresAt) - Date.now() + 50);
    const outcomes = await Promise.all([
      e.inventory.expire(sku, order.orderId),
      cluster.engine.inventory.expire(sku, order.orderId),
    ]);
    assert.deepEqual(outcomes.sort(), ['dropped', 'expired']);
    const state = await redisState(e, sku);
    assert.equal(state.available, 6);
    assert.equal(state.users[user('d')] ?? 0, 0);
    assert.equal(
      (await e.inventory.getOrder(user('d'), order.orderId)).status,
      'expired',
      'read back from its hash',
    );
  });
});
