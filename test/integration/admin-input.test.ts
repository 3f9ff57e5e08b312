// Admin input that PostgreSQL could not store, or that would push totals past what the
// stores hold, is refused at the API with a 4xx and changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createSku, redisState, startApi, uid, type RunningApi } from '../helpers.js';

describe('admin input the stores cannot hold', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi();
  });
  after(() => api.stop());

  const restock = (sku: string, body: unknown) =>
    fetch(`${api.url}/v1/admin/skus/${sku}/restock`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify(body),
    });

  for (const [name, reason] of [
    ['a NUL character', 'pallet\u0000two'],
    ['a control character', 'bell\u0007'],
    ['a lone surrogate', 'half \ud800 pair'],
  ] as const) {
    it(`a restock reason with ${name} is refused and changes nothing`, async () => {
      const sku = uid('adm');
      await createSku(api, { sku, stock: 5, perUserLimit: 1 });
      const before = await redisState(api.engine, sku);
      const res = await restock(sku, { quantity: 1, reason });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as any).error.code, 'VALIDATION_FAILED');
      assert.deepEqual(await redisState(api.engine, sku), before);
    });

    it(`a SKU name with ${name} is refused and nothing is created`, async () => {
      const sku = uid('admn');
      const res = await fetch(`${api.url}/v1/admin/skus`, {
        method: 'POST',
        headers: api.admin,
        body: JSON.stringify({ sku, name: `x${reason}`, stock: 1, perUserLimit: 1 }),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as any).error.code, 'VALIDATION_FAILED');
      assert.equal(await api.engine.db.sku.findUnique({ where: { id: sku } }), null);
    });
  }

  it('a restock past the supply limit is refused and changes nothing', async () => {
    const sku = uid('admx');
    await createSku(api, { sku, stock: 10_000_000, perUserLimit: 1 });
    let last = 200;
    let refused: any;
    // 10M per restock: a PostgreSQL integer (2^31 - 1) would overflow after ~214 of them.
    for (let i = 0; i < 250 && last === 200; i++) {
      const res = await restock(sku, { quantity: 10_000_000, reason: `lot ${i}` });
      last = res.status;
      if (last !== 200) refused = await res.json();
    }
    assert.equal(last, 409);
    assert.equal(refused.error.code, 'SUPPLY_LIMIT_EXCEEDED');
    const state = await redisState(api.engine, sku);
    assert.ok(state.supplied <= 2 ** 31 - 1, `supplied ${state.supplied}`);
    const again = await restock(sku, { quantity: 10_000_000, reason: 'one more' });
    assert.equal(again.status, 409);
    assert.deepEqual(await redisState(api.engine, sku), state);
  });
});
