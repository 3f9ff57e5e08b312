// An order is one string in Redis (orderValue in src/shared/keys.ts). Orders an older
// engine wrote are hashes of the same fields, and they may still be live when the new engine
// starts: each is replayed, read, confirmed, cancelled, expired and repaired as before, with
// units back exactly once. An order that is neither is refused loudly, never taken as absent.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../../src/shared/errors.js';
import { orderValue, parseOrder } from '../../src/shared/keys.js';
import type { Engine } from '../../src/engine.js';
import {
  redisState,
  startApi,
  startEngine,
  uid,
  waitForDrain,
  type RunningApi,
} from '../helpers.js';

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

const held = (s: { users: Record<string, number> }) =>
  Object.values(s.users).reduce((a, b) => a + b, 0);

describe('order layout', () => {
  let single: RunningApi;
  let cluster: RunningApi;
  const run = uid('ol');
  const user = (name: string) => `${run}-${name}`;
  before(async () => {
    // The relay and writer run beside the single-node engine: a repair waits for PostgreSQL.
    single = await startEngine(['writer', 'relay', 'api'], {}, { claimInScript: true });
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

  it('a purchase writes its order as one string of six fields, and each change rewrites it', async () => {
    const e = single.engine;
    const sku = uid('ols');
    await e.inventory.createSku({ sku, name: sku, stock: 5, perUserLimit: 5 });
    const { order } = await e.inventory.purchase(user('a'), sku, 2, 'k1');
    const key = e.keys.forSku(sku).order(order.orderId);
    assert.equal(await e.redis.type(key), 'string');
    const value = (status: string) =>
      orderValue({
        user: user('a'),
        sku,
        quantity: 2,
        status,
        createdAt: Date.parse(order.createdAt),
        expiresAt: Date.parse(order.expiresAt),
      });
    assert.equal(await e.redis.get(key), value('reserved'));
    assert.equal(await e.redis.ttl(key), -1, 'a reservation lives until it ends');

    assert.equal((await e.inventory.confirm(user('a'), order.orderId)).status, 'confirmed');
    assert.equal(await e.redis.get(key), value('confirmed'));
    const ttl = await e.redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= e.cfg.ORDER_RETENTION_SECONDS, `retention ttl ${ttl}`);

    assert.equal((await e.inventory.cancel(user('a'), order.orderId)).status, 'cancelled');
    assert.equal(await e.redis.get(key), value('cancelled'));
    assert.ok((await e.redis.ttl(key)) > 0, 'an ended order keeps a retention ttl');
    assert.equal((await redisState(e, sku)).available, 5);
  });

  it("an older engine's hash order is replayed, read, confirmed and cancelled in its own layout", async () => {
    const e = single.engine;
    const sku = uid('olh');
    await e.inventory.createSku({ sku, name: sku, stock: 10, perUserLimit: 10 });
    const first = await e.inventory.purchase(user('b'), sku, 3, 'k1');
    await asOlderEngineWrote(e, sku, first.order.orderId);
    const key = e.keys.forSku(sku).order(first.order.orderId);
    const stateBefore = await redisState(e, sku);

    // A retry of the key reads the order in the script on both paths: the claim names it.
    for (const api of [single, cluster]) {
      const again = await api.engine.inventory.purchase(user('b'), sku, 3, 'k1');
      assert.equal(again.replayed, true);
      assert.deepEqual(again.order, first.order);
      assert.deepEqual(await api.engine.inventory.getOrder(undefined, first.order.orderId), {
        ...first.order,
      });
      assert.deepEqual(
        await api.engine.inventory.getOrder(user('b'), first.order.orderId),
        first.order,
      );
    }
    assert.deepEqual(await redisState(e, sku), stateBefore, 'replays changed nothing');
    assert.equal(await e.redis.type(key), 'hash');

    assert.equal(
      (await cluster.engine.inventory.confirm(user('b'), first.order.orderId)).status,
      'confirmed',
    );
    const afterConfirm = await redisState(e, sku);
    assert.deepEqual(
      { ...afterConfirm, seq: stateBefore.seq },
      stateBefore,
      'the units stay held, one event more',
    );
    assert.equal(afterConfirm.seq, stateBefore.seq + 1);
    assert.equal(await e.redis.type(key), 'hash', 'kept in its own layout');
    assert.equal(await e.redis.hget(key, 'status'), 'confirmed');
    assert.ok((await e.redis.ttl(key)) > 0, 'kept for the retention window');
    // Confirming again replays and changes nothing.
    assert.equal((await e.inventory.confirm(user('b'), first.order.orderId)).status, 'confirmed');
    assert.deepEqual(await redisState(e, sku), afterConfirm);

    assert.equal((await e.inventory.cancel(user('b'), first.order.orderId)).status, 'cancelled');
    assert.equal(await e.redis.hget(key, 'status'), 'cancelled');
    assert.ok((await e.redis.ttl(key)) > 0);
    const end = await redisState(e, sku);
    assert.equal(end.available, 10);
    assert.equal(held(end), 0);
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
    assert.equal(held(state), 0);
    assert.equal(state.seq, 2, 'one purchase and one cancel: two events');
    assert.equal(
      await e.redis.hget(e.keys.forSku(sku).order(order.orderId), 'status'),
      'cancelled',
    );
  });

  it("an older engine's hash reservation expires once when due, and its units go back", async () => {
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
    const reserved = await redisState(e, sku);
    assert.equal(await e.inventory.expire(sku, order.orderId), 'kept');
    assert.deepEqual(await redisState(e, sku), reserved, 'not due yet: nothing changed');
    assert.equal((await e.inventory.getOrder(user('d'), order.orderId)).status, 'reserved');

    await sleep(Date.parse(order.expiresAt) - Date.now() + 50);
    const outcomes = await Promise.all([
      e.inventory.expire(sku, order.orderId),
      cluster.engine.inventory.expire(sku, order.orderId),
    ]);
    assert.deepEqual(outcomes.sort(), ['dropped', 'expired']);
    const state = await redisState(e, sku);
    assert.equal(state.available, 6);
    assert.equal(held(state), 0);
    assert.equal((await e.inventory.getOrder(user('d'), order.orderId)).status, 'expired');
  });

  it('a repair rewrites an older engine hash reservation as a string, still live', async () => {
    const e = single.engine;
    const sku = uid('olr');
    await e.inventory.createSku({ sku, name: sku, stock: 8, perUserLimit: 8 });
    const { order } = await e.inventory.purchase(user('r'), sku, 3, 'k1');
    await asOlderEngineWrote(e, sku, order.orderId);
    await waitForDrain(e, [sku]);
    await e.inventory.repair(sku);
    const key = e.keys.forSku(sku).order(order.orderId);
    assert.equal(await e.redis.type(key), 'string');
    assert.equal(parseOrder((await e.redis.get(key))!)?.status, 'reserved');
    assert.equal(await e.redis.ttl(key), -1);
    assert.equal((await e.inventory.cancel(user('r'), order.orderId)).status, 'cancelled');
    assert.equal((await redisState(e, sku)).available, 8);
  });

  it('after Redis lost a SKU, its rebuild restores the ended orders as strings with their retention', async () => {
    const e = single.engine;
    const sku = uid('olb');
    await e.inventory.createSku({ sku, name: sku, stock: 4, perUserLimit: 4 });
    const { order } = await e.inventory.purchase(user('l'), sku, 1, 'k1');
    await e.inventory.cancel(user('l'), order.orderId);
    await waitForDrain(e, [sku]);
    const k = e.keys.forSku(sku);
    const key = k.order(order.orderId);
    await e.redis.del(k.sku, k.users, key);
    // Retries while the SKU is rebuilt (503), as a client following Retry-After would.
    for (let i = 0; ; i++) {
      const c = await code(e.inventory.purchase(user('l'), sku, 1, 'k2'));
      if (c === 'ok') break;
      assert.ok(c === 'SKU_UNAVAILABLE' && i < 100, c);
      await sleep(100);
    }
    assert.equal(await e.redis.type(key), 'string');
    assert.equal(parseOrder((await e.redis.get(key))!)?.status, 'cancelled');
    assert.ok((await e.redis.ttl(key)) > 0, 'restored with what is left of its retention');
  });

  for (const [broken, write] of [
    ['a malformed string', (e: Engine, key: string) => e.redis.set(key, 'not|an|order')],
    [
      'a hash without a field',
      (e: Engine, key: string) => e.redis.hset(key, { user: 'x', sku: 'y', quantity: 1 }),
    ],
    ['a key of another type', (e: Engine, key: string) => e.redis.rpush(key, 'x')],
  ] as const)
    it(`an order that is ${broken} is refused as an internal error by every change, which writes nothing`, async () => {
      const e = single.engine;
      const sku = uid('olm');
      const buyer = user(sku);
      await e.inventory.createSku({
        sku,
        name: sku,
        stock: 5,
        perUserLimit: 5,
        reservationTtlSeconds: 1,
      });
      const { order } = await e.inventory.purchase(buyer, sku, 2, 'k1');
      const key = e.keys.forSku(sku).order(order.orderId);
      const good = await e.redis.get(key);
      await e.redis.del(key);
      await write(e, key);
      try {
        await sleep(Date.parse(order.expiresAt) - Date.now() + 50); // due, as well
        const state = await redisState(e, sku);
        for (const api of [single, cluster]) {
          const i = api.engine.inventory;
          assert.equal(await code(i.getOrder(buyer, order.orderId)), 'INTERNAL');
          assert.equal(await code(i.cancel(buyer, order.orderId)), 'INTERNAL');
          assert.equal(await code(i.confirm(buyer, order.orderId)), 'INTERNAL');
          assert.equal(await code(i.purchase(buyer, sku, 2, 'k1')), 'INTERNAL', 'a retry');
          assert.equal(await i.expire(sku, order.orderId), 'broken');
        }
        assert.deepEqual(await redisState(e, sku), state, 'nothing written');
      } finally {
        // The suite's Redis is shared: leave no broken order for another test to meet.
        await e.redis.del(key);
        await e.redis.set(key, good!);
      }
      assert.equal(await e.inventory.expire(sku, order.orderId), 'expired');
      assert.equal((await redisState(e, sku)).available, 5);
    });
});
