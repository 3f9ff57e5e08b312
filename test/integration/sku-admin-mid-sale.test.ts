// Admin actions mid-sale touch only their own SKU: creating, restocking or repairing a SKU
// must leave every other SKU of its inventory partition as it was, reservations included.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  buy,
  createSku,
  skuInPartition,
  startEngine,
  token,
  uid,
  type RunningApi,
} from '../helpers.js';

describe('admin actions mid-sale', () => {
  let api: RunningApi;
  before(async () => {
    api = await startEngine(['api', 'sweeper'], { SWEEP_INTERVAL_MS: '100' });
  });
  after(() => api.stop());

  it("creating a SKU keeps its partition neighbours' reservations expiring", async () => {
    const a = uid('exa');
    await createSku(api, { sku: a, stock: 5, perUserLimit: 1, reservationTtlSeconds: 2 });
    const r = await buy(api, a, await token('exa-user'), uid('k'));
    assert.equal(r.status, 201);
    const b = skuInPartition(api.engine.keys, api.engine.keys.partitionOf(a), 'exb');
    await createSku(api, { sku: b, stock: 5, perUserLimit: 1 });
    await sleep(3000);
    const order = await api.engine.inventory.getOrder(undefined, r.body.orderId);
    assert.equal(order.status, 'expired', 'the reservation of the neighbour SKU expired');
    const view = await api.engine.inventory.getSku(a);
    assert.equal(view.available, 5, 'its unit went back on sale');
  });

  it('restocking a SKU keeps its partition neighbours intact', async () => {
    const a = uid('rsa');
    await createSku(api, { sku: a, stock: 3, perUserLimit: 1, reservationTtlSeconds: 2 });
    const r = await buy(api, a, await token('rsa-user'), uid('k'));
    assert.equal(r.status, 201);
    const b = skuInPartition(api.engine.keys, api.engine.keys.partitionOf(a), 'rsb');
    await createSku(api, { sku: b, stock: 1, perUserLimit: 1 });
    const res = await fetch(`${api.url}/v1/admin/skus/${b}/restock`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify({ quantity: 4, reason: 'second pallet' }),
    });
    assert.equal(res.status, 200);
    await sleep(3000);
    assert.equal(
      (await api.engine.inventory.getOrder(undefined, r.body.orderId)).status,
      'expired',
    );
    assert.equal((await api.engine.inventory.getSku(a)).available, 3);
    assert.equal((await api.engine.inventory.getSku(b)).available, 5);
  });
});
