// Repair mid-load, with purchases, confirmations and cancellations racing it: no event
// lands between the "drained" check and the reload, no sequence number is used twice, and
// a reload never leaves the SKU paused.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  buy,
  createSku,
  post,
  startEngine,
  token,
  uid,
  waitForDrain,
  type RunningApi,
} from '../helpers.js';

describe('repair mid-load', () => {
  let api: RunningApi;
  before(async () => {
    api = await startEngine(['writer', 'relay', 'sweeper', 'api'], {
      REPAIR_ENABLED: 'true',
      SWEEP_INTERVAL_MS: '100',
    });
  });
  after(() => api.stop());

  it('keeps sequences unique and both stores equal', async () => {
    const sku = uid('rep');
    await createSku(api, { sku, stock: 400, perUserLimit: 4, reservationTtlSeconds: 1 });
    const jwts = await Promise.all(Array.from({ length: 60 }, (_, i) => token(`rep${i}`)));
    const orders: { id: string; user: number }[] = [];
    let stop = false;
    let repairs = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const user = (w * 13 + i) % jwts.length;
        const r = await buy(api, sku, jwts[user]!, `${sku}-${w}-${i}`, 1);
        if (r.status === 201) orders.push({ id: r.body.orderId, user });
        const o = orders[Math.floor(Math.random() * orders.length)];
        if (o) {
          const action = i % 2 ? 'confirm' : 'cancel';
          const x = await post(api, `/v1/orders/${o.id}/${action}`, jwts[o.user]!);
          assert.ok(x.status < 500 || x.status === 503, `${action}: ${x.status}`);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    for (let i = 0; i < 4; i++) {
      await sleep(400);
      const res = await fetch(`${api.url}/v1/admin/skus/${sku}/repair`, {
        method: 'POST',
        headers: api.admin,
      });
      if (res.status === 200) repairs += 1;
      else assert.equal(res.status, 503, await res.text());
    }
    stop = true;
    await load;
    assert.ok(repairs > 0, 'at least one repair went through mid-load');
    await sleep(1500); // let the 1 s reservations expire and be swept

    const [c] = await waitForDrain(api.engine, [sku]);
    assert.equal(c!.drift, 0, JSON.stringify(c));
    assert.equal(c!.conservationGap, 0);
    const view = await api.engine.inventory.getSku(sku);
    assert.notEqual(view.status, 'paused', 'sales resumed after every repair');
    const events = await api.engine.db.stockEvent.findMany({
      where: { skuId: sku },
      select: { sequence: true },
      orderBy: { sequence: 'asc' },
    });
    events.forEach((e, i) => assert.equal(e.sequence, i + 1, 'sequences 1..n, none reused'));
    const anomalies = await api.engine.db.pipelineAnomaly.findMany({ where: { skuId: sku } });
    assert.deepEqual(anomalies, [], 'no gap, duplicate or conflict');
  });
});
