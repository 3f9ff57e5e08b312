// Reservation expiry: units come back exactly once, even with two sweepers racing, and
// one sweeper leads at a time; a leader keeps its lease through a Redis blip.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Sweeper } from '../../src/inventory/sweeper.js';
import { createRedlock, Leadership } from '../../src/clients/locks.js';
import { createRedis } from '../../src/clients/redis.js';
import { ownRedis } from '../support/redis-server.js';
import {
  buy,
  createSku,
  redisState,
  skuInPartition,
  startApi,
  testConfig,
  token,
  uid,
  type RunningApi,
} from '../helpers.js';

describe('expiry sweeper', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi();
  });
  after(() => api.stop());

  it('two sweepers racing return each unit once', async () => {
    const sku = uid('sweep');
    await createSku(api, { sku, stock: 30, perUserLimit: 1, reservationTtlSeconds: 1 });
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) =>
        buy(api, sku, await token(`s${i}`), `${sku}-${i}`, 1),
      ),
    );
    assert.ok(results.every((r) => r.status === 201));
    // One order is confirmed in time: it must not expire.
    const kept = results[0]!.body.orderId as string;
    assert.equal((await api.engine.inventory.confirm(undefined, kept)).status, 'confirmed');
    assert.equal((await redisState(api.engine, sku)).available, 10);
    await sleep(1200);

    const log = api.engine.log;
    const s1 = new Sweeper(
      api.engine.redis,
      api.engine.inventory,
      undefined,
      { intervalMs: 1000, batchSize: 5, parallel: 2 },
      log,
    );
    const s2 = new Sweeper(
      api.engine.redis,
      api.engine.inventory,
      undefined,
      { intervalMs: 1000, batchSize: 5, parallel: 2 },
      log,
    );
    let total = 0;
    for (let round = 0; round < 10; round++) {
      const [a, b] = await Promise.all([s1.sweepOnce(), s2.sweepOnce()]);
      total += a + b;
    }
    assert.ok(total >= 19, `expired ${total}`);
    const state = await redisState(api.engine, sku);
    assert.equal(state.available, 29, 'every unreserved unit back, once');
    assert.equal(state.seq, 20 + 1 + 19, 'one event per purchase, confirmation and expiry');
    const k = api.engine.keys.forSku(sku);
    const events = (await api.engine.redis.xrange(k.events, '-', '+'))
      .map(([, f]) => JSON.parse(f[1]!))
      .filter((e) => e.sku === sku && e.type === 'order.expired');
    if (events.length > 0)
      assert.equal(
        new Set(events.map((e) => e.orderId)).size,
        events.length,
        'no order expired twice',
      );
    const keptOrder = await api.engine.inventory.getOrder(undefined, kept);
    assert.equal(keptOrder.status, 'confirmed');
  });

  // When the unpaid carts of a big sale lapse together, their units must come back in one
  // pass, not one batch per interval; and due entries that cannot expire yet (a paused SKU)
  // must not hold back the others of their partition.
  it('one pass returns a whole backlog, stepping over a paused SKU', async () => {
    const held = uid('swpaused');
    const free = skuInPartition(api.engine.keys, api.engine.keys.partitionOf(held), 'swfree');
    await createSku(api, { sku: held, stock: 3, perUserLimit: 1, reservationTtlSeconds: 1 });
    await createSku(api, { sku: free, stock: 12, perUserLimit: 1, reservationTtlSeconds: 1 });
    // The paused SKU's reservations come first in the index: they are due first.
    for (const [sku, n] of [
      [held, 3],
      [free, 12],
    ] as const)
      for (let i = 0; i < n; i++)
        assert.equal((await buy(api, sku, await token(`sw${i}`), `${sku}-${i}`, 1)).status, 201);
    await api.engine.inventory.setPaused(held, true);
    await sleep(1200);
    const sweeper = new Sweeper(
      api.engine.redis,
      api.engine.inventory,
      undefined,
      { intervalMs: 1000, batchSize: 2, parallel: 1 },
      api.engine.log,
    );
    const expired = await sweeper.sweepOnce();
    assert.ok(expired >= 12, `expired ${expired}`);
    assert.equal((await redisState(api.engine, free)).available, 12, 'the whole backlog is back');
    assert.equal((await redisState(api.engine, held)).available, 0, 'paused: nothing released');
    await api.engine.inventory.setPaused(held, false);
    await sweeper.sweepOnce();
    assert.equal((await redisState(api.engine, held)).available, 3);
  });

  it('one leader at a time; another takes over within one lease when it stops renewing', async () => {
    const resource = `fs:leader:${uid('test')}`;
    const lease = 800;
    const a = new Leadership(createRedlock(api.engine.redis), resource, lease);
    const b = new Leadership(createRedlock(api.engine.redis), resource, lease);
    const [ta, tb] = await Promise.all([a.tick(), b.tick()]);
    assert.equal(Number(ta) + Number(tb), 1, 'exactly one leads');
    const [leader, follower] = ta ? [a, b] : [b, a];
    assert.equal(await leader.tick(), true, 'the leader renews');
    assert.equal(await follower.tick(), false);
    // The leader dies (stops renewing): the follower leads within one lease.
    const died = Date.now();
    let took = false;
    while (!took && Date.now() - died < lease * 2) {
      took = await follower.tick();
      if (!took) await sleep(50);
    }
    assert.ok(took);
    assert.ok(Date.now() - died <= lease + 200, `took over after ${Date.now() - died} ms`);
    assert.equal(leader.leads(), false, 'the old leader knows its lease lapsed');
    assert.notEqual(leader.fencingToken, follower.fencingToken);
    await follower.resign();
  });

  it('a renewal Redis does not answer keeps the lease; one Redis refuses ends it', async () => {
    // A Redis of the test's own, to hang (SIGSTOP) while the leader renews.
    const redis = await ownRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    const client = createRedis(
      testConfig({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '200' }),
    );
    try {
      const lease = 3000;
      const resource = `fs:leader:${uid('blip')}`;
      const leader = new Leadership(createRedlock(client), resource, lease);
      assert.equal(await leader.tick(), true);
      await sleep(lease / 2 + 100); // past half the lease: the next tick renews
      redis.freeze();
      try {
        assert.equal(await leader.tick(), true, 'the renewal timed out, but the lease still runs');
      } finally {
        redis.thaw();
      }
      // The client reconnects after its timeout; the leader leads throughout and renews
      // once Redis answers. Before the fix the failed renewal dropped the lease, and the key
      // (still holding this leader's token) kept every acquire out until it lapsed: no
      // leader for the rest of the lease.
      const thawed = Date.now();
      while (!leader.leads(lease / 2) && Date.now() - thawed < 1000) {
        assert.equal(await leader.tick(), true, 'leads while Redis comes back');
        await sleep(50);
      }
      assert.ok(leader.leads(lease / 2), 'renewed to a full lease once Redis answers again');

      // Another token in the key (a Redis that lost the key, and a process that took it): the
      // next renewal is refused, and the lease ends at once, not at its expiry.
      await client.set(resource, 'someone-else', 'PX', lease);
      await sleep(lease / 2 + 100);
      assert.equal(await leader.tick(), false);
      assert.equal(leader.leads(), false);
    } finally {
      client.disconnect();
      await redis.close();
    }
  });
});
