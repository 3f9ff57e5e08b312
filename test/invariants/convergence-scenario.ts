// Convergence as a scenario over any engine running api, sweeper, relay and writer
// (single-node Redis or cluster): 5,000 operations over 20 SKUs, then both stores equal.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  buy,
  createSku,
  post,
  redisOrders,
  token,
  uid,
  assertStoresAgree,
  type RunningApi,
} from '../helpers.js';

export async function convergenceScenario(api: RunningApi): Promise<void> {
  const skus = Array.from({ length: 20 }, () => uid('conv'));
  for (const [i, sku] of skus.entries()) {
    await createSku(api, {
      sku,
      stock: 150,
      perUserLimit: 3,
      reservationTtlSeconds: i % 4 === 0 ? 1 : 600,
    });
  }
  const users = Array.from({ length: 400 }, (_, i) => `cv${i}`);
  const jwts = await Promise.all(users.map((u) => token(u)));
  const accepted: { orderId: string; sku: string; user: number }[] = [];
  let ops = 0;
  let refused = 0;
  // Waves of concurrent purchases, with cancels and confirmations of earlier orders.
  for (let wave = 0; ops < 5000; wave++) {
    const batch = await Promise.all(
      Array.from({ length: 250 }, async (_, j) => {
        const user = (wave * 250 + j) % users.length;
        const sku = skus[(wave * 7 + j) % skus.length]!;
        const r = await buy(api, sku, jwts[user]!, `${sku}-${wave}-${j}`, 1 + (j % 2));
        if (r.status === 201) accepted.push({ orderId: r.body.orderId, sku, user });
        else refused += 1;
      }),
    );
    ops += batch.length;
    const recent = accepted.slice(-120);
    const changes = await Promise.all(
      recent.map((o, j) =>
        j % 3 === 0
          ? post(api, `/v1/orders/${o.orderId}/cancel`, jwts[o.user]!)
          : j % 3 === 1
            ? post(api, `/v1/orders/${o.orderId}/confirm`, jwts[o.user]!)
            : Promise.resolve(null),
      ),
    );
    ops += changes.filter(Boolean).length;
  }
  assert.ok(accepted.length > 1000, `accepted ${accepted.length}, refused ${refused}`);
  await sleep(1500); // let the 1 s reservations of a quarter of the SKUs expire and be swept
  const compared = await assertStoresAgree(api.engine, skus);
  for (const c of compared) assert.ok(c.db.available >= 0);
  // Exactly the accepted orders, each once, with the status Redis has.
  const dbOrders = await api.engine.db.order.findMany({
    where: { skuId: { in: skus } },
    select: { id: true, status: true, skuId: true },
  });
  assert.equal(dbOrders.length, new Set(dbOrders.map((o) => o.id)).size);
  assert.deepEqual(new Set(dbOrders.map((o) => o.id)), new Set(accepted.map((o) => o.orderId)));
  for (const sku of skus) {
    const inRedis = await redisOrders(api.engine, sku);
    for (const o of dbOrders.filter((x) => x.skuId === sku))
      assert.equal(o.status, inRedis.get(o.id), o.id);
  }
  const statuses = new Set(dbOrders.map((o) => o.status));
  for (const s of ['reserved', 'confirmed', 'cancelled', 'expired'])
    assert.ok(statuses.has(s as never), `some order ended ${s}`);
  // One audit row per applied event, no gaps.
  const events = await api.engine.db.stockEvent.groupBy({
    by: ['skuId'],
    where: { skuId: { in: skus } },
    _count: true,
    _max: { sequence: true },
  });
  for (const e of events) assert.equal(e._count, e._max.sequence, e.skuId);
  const anomalies = await api.engine.db.pipelineAnomaly.count({ where: { skuId: { in: skus } } });
  assert.equal(anomalies, 0);
}
