// Durability drill: the engine on a redis-server of its own with AOF `appendfsync always`;
// mid-load, redis-server is killed with kill -9 and restarted on the same data folder,
// twice. Afterwards every purchase that got a 201 is still readable through the API and
// reached PostgreSQL exactly once, both stores agree on stock and sequence, nothing is
// oversold. DRILL_REDIS_ARGS replaces the persistence arguments (e.g. "--appendonly no")
// to watch the same drill catch the loss a Redis without persistence causes.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { postRetrying } from '../support/load.js';
import { after, before, describe, it } from 'node:test';
import {
  assertPipelineExact,
  assertStoresAgree,
  startEngine,
  token,
  uid,
  type RunningApi,
} from '../helpers.js';
import { spawnRoles, stopProc, type Proc } from '../support/processes.js';
import { startOwnRedis, type OwnRedis } from '../support/redis-server.js';

const persistence = (process.env.DRILL_REDIS_ARGS ?? '--appendonly yes --appendfsync always')
  .split(' ')
  .filter(Boolean);

interface Accepted {
  orderId: string;
  sku: string;
  user: number;
  status: 'reserved' | 'cancelled';
}

describe('Redis kill -9 with AOF appendfsync always, mid-load', { timeout: 420_000 }, () => {
  let redis: OwnRedis;
  let reader: RunningApi;
  const procs: Proc[] = [];
  before(async () => {
    redis = await startOwnRedis(persistence);
    reader = await startEngine([], { REDIS_URL: redis.url });
  });
  after(async () => {
    await Promise.all(procs.map((p) => stopProc(p, 15_000)));
    await reader?.stop().catch(() => undefined);
    await redis?.close();
  });

  it('every purchase that got a 201 survives, is readable and reaches PostgreSQL once', async () => {
    const env = { REDIS_URL: redis.url, SWEEP_INTERVAL_MS: '200', REDIS_DURABILITY: 'always' };
    const api = spawnRoles('durability-api', ['api', 'sweeper'], env);
    procs.push(
      api,
      spawnRoles('durability-relay', ['relay'], env),
      spawnRoles('durability-writer', ['writer'], env),
    );
    const apiUrl = await Promise.race([
      api.url,
      sleep(60_000).then(() => Promise.reject(new Error('api did not start'))),
    ]);

    const skus = Array.from({ length: 4 }, () => uid('durable'));
    const stock = 300;
    const perUserLimit = 5;
    for (const sku of skus)
      await reader.engine.inventory.createSku({ sku, name: sku, stock, perUserLimit });
    const users = Array.from({ length: 200 }, () => uid('du'));
    const jwts = await Promise.all(users.map((u) => token(u)));

    /** A request whose answer was lost (Redis down, 5xx) is retried with the same key. */
    const call = (path: string, user: number, headers: Record<string, string>, body = '') =>
      postRetrying<{ orderId: string }>(() => apiUrl, path, jwts[user]!, headers, body, 300);

    const accepted = new Map<string, Accepted>();
    let kills = 0;
    const nemesis = (async () => {
      for (let i = 0; i < 2; i++) {
        while (accepted.size < 150 * (i + 1)) await sleep(20);
        await redis.kill();
        kills += 1;
        await sleep(1000);
        await redis.start();
      }
    })();
    let attempts = 0;
    for (let wave = 0; attempts < 1800 || kills < 2; wave++) {
      await Promise.all(
        Array.from({ length: 40 }, async (_, j) => {
          attempts += 1;
          const user = (wave * 40 + j) % users.length;
          const sku = skus[(wave + j) % skus.length]!;
          const r = await call(
            `/v1/skus/${sku}/purchases`,
            user,
            {
              'idempotency-key': `${sku}-${wave}-${j}`,
              'content-type': 'application/json',
            },
            '{"quantity":1}',
          );
          if (r.status !== 201) return;
          const order: Accepted = { orderId: r.body.orderId, sku, user, status: 'reserved' };
          accepted.set(order.orderId, order);
          if (j % 5 === 0) {
            const c = await call(`/v1/orders/${order.orderId}/cancel`, user, {});
            if (c.status === 200) order.status = 'cancelled';
          }
        }),
      );
      if (wave > 2000) throw new Error('load did not finish');
    }
    await nemesis;
    assert.equal(kills, 2, 'redis-server was killed twice mid-load');
    assert.ok(accepted.size > 400, `accepted ${accepted.size}`);

    // Every 201 is still readable, as its owner, with the state the client last saw.
    const lost: string[] = [];
    for (const o of accepted.values()) {
      const res = await fetch(`${apiUrl}/v1/orders/${o.orderId}`, {
        headers: { authorization: `Bearer ${jwts[o.user]}` },
      });
      const body = (await res.json()) as { status?: string };
      if (res.status !== 200) lost.push(`${o.orderId} (${o.sku}): GET answered ${res.status}`);
      else assert.equal(body.status, o.status, `order ${o.orderId} status`);
    }
    assert.deepEqual(lost, [], `${lost.length} of ${accepted.size} acknowledged orders lost`);

    // Both stores after the drain: equal, conserved, nothing oversold, each event once.
    const compared = await assertStoresAgree(reader.engine, skus, 120_000);
    for (const c of compared) {
      assert.equal(c.db.supplied, stock, `${c.sku}: supplied`);
      assert.ok(c.db.available >= 0, `${c.sku}: not oversold`);
    }
    const dbOrders = await reader.engine.db.order.findMany({
      where: { skuId: { in: skus } },
      select: { id: true, status: true, skuId: true, quantity: true },
    });
    const byId = new Map(dbOrders.map((o) => [o.id, o]));
    assert.equal(byId.size, dbOrders.length, 'no order twice in PostgreSQL');
    for (const o of accepted.values()) {
      assert.equal(byId.get(o.orderId)?.status, o.status, `order ${o.orderId} in PostgreSQL`);
    }
    for (const sku of skus) {
      const live = dbOrders
        .filter((o) => o.skuId === sku && (o.status === 'reserved' || o.status === 'confirmed'))
        .reduce((s, o) => s + o.quantity, 0);
      assert.ok(live <= stock, `${sku}: ${live} units held of ${stock}`);
    }
    await assertPipelineExact(reader.engine, skus, dbOrders);
    // Operators see the promise that holds: the API's gauge, and the engine's own reading.
    const metrics = await (await fetch(`${apiUrl}/metrics`)).text();
    const held = persistence.includes('always') ? 'always' : 'none';
    assert.match(
      metrics,
      new RegExp(`flashsale_redis_durability\\{promise="${held}",required="always"\\} 1`),
    );
    assert.equal((await reader.engine.durability.check()).actual, held);
  });
});
