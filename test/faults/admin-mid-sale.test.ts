// Admin actions mid-sale: while buyers buy, cancel and confirm on several SKUs of one
// inventory partition (short reservations, so expiries run too), the operator creates new
// SKUs in that partition, restocks, pauses and resumes. Each action touches only its SKU:
// at the end every reservation has expired or ended, both stores agree on every SKU, every
// order acknowledged is in PostgreSQL once, and sequences run 1..n with no gap or reuse.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  buy,
  createSku,
  post,
  skuInPartition,
  startEngine,
  token,
  uid,
  waitForDrain,
  type RunningApi,
} from '../helpers.js';

describe('admin actions during a running sale, with the full pipeline', () => {
  let api: RunningApi;
  before(async () => {
    api = await startEngine(['writer', 'relay', 'sweeper', 'api'], { SWEEP_INTERVAL_MS: '100' });
  });
  after(() => api.stop());

  it('create, restock, pause and resume in the partition of a running sale', async () => {
    const first = uid('ams');
    const partition = api.engine.keys.partitionOf(first);
    const skus = [first, skuInPartition(api.engine.keys, partition, 'ams')];
    for (const sku of skus)
      await createSku(api, { sku, stock: 60, perUserLimit: 2, reservationTtlSeconds: 1 });
    const jwts = await Promise.all(Array.from({ length: 40 }, (_, i) => token(`ams${i}`)));
    const accepted: { id: string; user: number }[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const user = (w * 11 + i) % jwts.length;
        const sku = skus[(w + i) % skus.length]!;
        const r = await buy(api, sku, jwts[user]!, `${first}-${w}-${i}`, 1);
        if (r.status === 201) accepted.push({ id: r.body.orderId, user });
        else assert.ok([409, 503].includes(r.status), `${r.status} ${JSON.stringify(r.body)}`);
        const o = accepted[(i * 7) % Math.max(1, accepted.length)];
        if (o && i % 3 === 0) {
          const x = await post(
            api,
            `/v1/orders/${o.id}/${i % 2 ? 'confirm' : 'cancel'}`,
            jwts[o.user]!,
          );
          assert.ok(x.status < 500 || x.status === 503, `${x.status} ${JSON.stringify(x.body)}`);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    const admin = (path: string, body?: unknown) =>
      fetch(`${api.url}${path}`, {
        method: 'POST',
        headers: api.admin,
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    for (let round = 0; round < 4; round++) {
      await sleep(300);
      const fresh = skuInPartition(api.engine.keys, partition, 'ams');
      await createSku(api, { sku: fresh, stock: 30, perUserLimit: 2, reservationTtlSeconds: 1 });
      skus.push(fresh);
      const target = skus[round % skus.length]!;
      assert.equal(
        (await admin(`/v1/admin/skus/${target}/restock`, { quantity: 5, reason: `round ${round}` }))
          .status,
        200,
      );
      assert.equal((await admin(`/v1/admin/skus/${target}/pause`)).status, 200);
      await sleep(100);
      assert.equal((await admin(`/v1/admin/skus/${target}/resume`)).status, 200);
    }
    await sleep(500);
    stop = true;
    await load;
    await sleep(2000); // every 1 s reservation is due; the sweeper returns their units

    const compared = await waitForDrain(api.engine, skus);
    for (const c of compared) {
      assert.equal(c.drift, 0, `${c.sku}: ${JSON.stringify(c)}`);
      assert.equal(c.conservationGap, 0, `${c.sku}: available + held == supplied`);
    }
    const rows = await api.engine.db.order.findMany({ where: { skuId: { in: skus } } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const o of accepted) assert.ok(byId.has(o.id), `order ${o.id} is in PostgreSQL`);
    assert.ok(
      rows.every((r) => r.status !== 'reserved'),
      'every reservation expired or ended, in every SKU of the partition',
    );
    for (const sku of skus) {
      const events = await api.engine.db.stockEvent.findMany({
        where: { skuId: sku },
        select: { sequence: true },
        orderBy: { sequence: 'asc' },
      });
      events.forEach((e, i) => assert.equal(e.sequence, i + 1, `${sku}: sequences 1..n`));
    }
    const anomalies = await api.engine.db.pipelineAnomaly.count({ where: { skuId: { in: skus } } });
    assert.equal(anomalies, 0);
  });
});
