// Redis keeps what decisions need and lets the rest go: an ended order, a confirmed one
// included, leaves Redis after ORDER_RETENTION_SECONDS; a confirmed order is cancellable
// while Redis keeps it, final afterwards.
import assert from 'node:assert/strict';
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

describe('Redis memory', () => {
  let api: RunningApi;
  before(async () => {
    api = await startEngine(['writer', 'relay', 'api']);
  });
  after(() => api.stop());

  it('a confirmed order leaves Redis after the retention window', async () => {
    const sku = uid('mem');
    await createSku(api, { sku, stock: 10, perUserLimit: 5 });
    const user = uid('memu').replace(/-/g, '_');
    const jwt = await token(user);
    const r = await buy(api, sku, jwt, uid('k'));
    assert.equal(r.status, 201);
    const orderKey = api.engine.keys.forSku(sku).order(r.body.orderId);
    assert.equal(await api.engine.redis.ttl(orderKey), -1, 'a reservation is kept while live');
    assert.equal((await post(api, `/v1/orders/${r.body.orderId}/confirm`, jwt)).status, 200);
    const ttl = await api.engine.redis.ttl(orderKey);
    assert.ok(ttl > 0 && ttl <= api.engine.cfg.ORDER_RETENTION_SECONDS, `ttl ${ttl}`);

    // Once Redis has let it go, PostgreSQL answers: readable, confirm replays, cancel is final.
    await waitForDrain(api.engine, [sku]);
    await api.engine.db.order.update({
      where: { id: r.body.orderId },
      data: {
        updatedAt: new Date(Date.now() - api.engine.cfg.ORDER_RETENTION_SECONDS * 1000 - 1000),
      },
    });
    await api.engine.redis.del(orderKey);
    const read = await fetch(`${api.url}/v1/orders/${r.body.orderId}`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.equal(read.status, 200);
    assert.equal(((await read.json()) as any).status, 'confirmed');
    assert.equal((await post(api, `/v1/orders/${r.body.orderId}/confirm`, jwt)).status, 200);
    const cancel = await post(api, `/v1/orders/${r.body.orderId}/cancel`, jwt);
    assert.equal(cancel.status, 409);
    assert.equal(cancel.body.error.code, 'ORDER_NOT_CANCELLABLE');
    const view = await api.engine.inventory.getSku(sku);
    assert.equal(view.available, 9, 'the units stay sold');
  });
});
