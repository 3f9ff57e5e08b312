// The buyer and admin API against the real Redis and PostgreSQL.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  buy,
  createSku,
  post,
  redisState,
  snapshot,
  startApi,
  token,
  uid,
  type RunningApi,
} from '../helpers.js';

describe('purchase API', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi();
  });
  after(() => api.stop());

  const skuPatterns = (sku: string, user: string) => {
    const k = api.engine.keys.forSku(sku);
    const tag = k.sku.slice(0, k.sku.indexOf('}') + 1);
    return [`${tag}:*`, `${api.engine.keys.idempotencyClaim(user, 'x').replace(/:x$/, '')}:*`];
  };

  it('creates an order and replays it for the same key', async () => {
    const sku = uid('buy');
    await createSku(api, { sku, stock: 10, perUserLimit: 3 });
    const jwt = await token('alice');
    const first = await buy(api, sku, jwt, `${sku}-k1`, 2);
    assert.equal(first.status, 201);
    assert.equal(first.replayed, false);
    assert.deepEqual(Object.keys(first.body).sort(), [
      'createdAt',
      'expiresAt',
      'orderId',
      'quantity',
      'sku',
      'status',
      'userId',
    ]);
    assert.equal(first.body.status, 'reserved');
    assert.equal(first.body.userId, 'alice');
    const again = await buy(api, sku, jwt, `${sku}-k1`, 2);
    assert.equal(again.status, 201);
    assert.equal(again.replayed, true);
    assert.deepEqual(again.body, first.body);
    assert.equal((await redisState(api.engine, sku)).available, 8);
    const view = await (await fetch(`${api.url}/v1/skus/${sku}`)).json();
    assert.deepEqual(view, {
      sku,
      available: 8,
      status: 'active',
      startsAt: null,
      endsAt: null,
      waitingRoom: false,
      qualificationRequired: false,
    });
    const read = await fetch(`${api.url}/v1/orders/${first.body.orderId}`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    assert.deepEqual(await read.json(), first.body);
    const asAdmin = await fetch(`${api.url}/v1/orders/${first.body.orderId}`, {
      headers: api.admin,
    });
    assert.equal(asAdmin.status, 200);
    const asOther = await fetch(`${api.url}/v1/orders/${first.body.orderId}`, {
      headers: { authorization: `Bearer ${await token('mallory')}` },
    });
    assert.equal(asOther.status, 404);
  });

  it('the same key with a different body answers 422 and changes nothing', async () => {
    const sku = uid('idem');
    const other = uid('idem');
    await createSku(api, { sku, stock: 10, perUserLimit: 5 });
    await createSku(api, { sku: other, stock: 10, perUserLimit: 5 });
    const user = 'bob';
    const jwt = await token(user);
    assert.equal((await buy(api, sku, jwt, `${sku}-k`, 1)).status, 201);
    const before = await snapshot(api.engine.redis, [
      ...skuPatterns(sku, user),
      ...skuPatterns(other, user),
    ]);
    const otherQty = await buy(api, sku, jwt, `${sku}-k`, 2);
    assert.equal(otherQty.status, 422);
    assert.equal(otherQty.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
    const otherSku = await buy(api, other, jwt, `${sku}-k`, 1);
    assert.equal(otherSku.status, 422);
    assert.deepEqual(
      await snapshot(api.engine.redis, [...skuPatterns(sku, user), ...skuPatterns(other, user)]),
      before,
    );
  });

  it('refuses over the limit, sold out and outside the sale window', async () => {
    const sku = uid('rules');
    await createSku(api, { sku, stock: 3, perUserLimit: 2 });
    const jwt = await token('carol');
    assert.equal((await buy(api, sku, jwt, `${sku}-1`, 2)).status, 201);
    const limit = await buy(api, sku, jwt, `${sku}-2`, 1);
    assert.equal(limit.status, 409);
    assert.equal(limit.body.error.code, 'LIMIT_EXCEEDED');
    const soldOut = await buy(api, sku, await token('dave'), `${sku}-3`, 2);
    assert.equal(soldOut.body.error.code, 'SOLD_OUT');
    assert.equal(soldOut.body.error.retryable, false);

    const later = uid('later');
    await createSku(api, {
      sku: later,
      stock: 3,
      perUserLimit: 2,
      startsAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    const early = await buy(api, later, jwt, `${later}-1`, 1);
    assert.equal(early.body.error.code, 'SALE_NOT_ACTIVE');
    assert.equal(
      ((await (await fetch(`${api.url}/v1/skus/${later}`)).json()) as any).status,
      'scheduled',
    );
    const ended = uid('ended');
    await createSku(api, {
      sku: ended,
      stock: 3,
      perUserLimit: 2,
      startsAt: new Date(Date.now() - 7200_000).toISOString(),
      endsAt: new Date(Date.now() - 3600_000).toISOString(),
    });
    assert.equal((await buy(api, ended, jwt, `${ended}-1`, 1)).body.error.code, 'SALE_NOT_ACTIVE');
    const missing = await buy(api, uid('nosuch'), jwt, uid('k'), 1);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'SKU_NOT_FOUND');
  });

  it('admin: create twice is 409 SKU_EXISTS; restock adds units; unknown SKU is 404', async () => {
    const sku = uid('adm');
    await createSku(api, { sku, stock: 1, perUserLimit: 1 });
    const dup = await fetch(`${api.url}/v1/admin/skus`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify({ sku, name: 'x', stock: 1, perUserLimit: 1 }),
    });
    assert.equal(dup.status, 409);
    assert.equal(((await dup.json()) as any).error.code, 'SKU_EXISTS');
    const restock = await fetch(`${api.url}/v1/admin/skus/${sku}/restock`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify({ quantity: 4, reason: 'found a box' }),
    });
    assert.equal(restock.status, 200);
    assert.deepEqual(await restock.json(), { sku, available: 5, totalSupplied: 5, sequence: 1 });
    const none = await fetch(`${api.url}/v1/admin/skus/${uid('none')}/restock`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify({ quantity: 1, reason: 'x' }),
    });
    assert.equal(none.status, 404);
    assert.equal((await fetch(`${api.url}/v1/skus/${uid('none')}`)).status, 404);
  });

  describe('order lifecycle', () => {
    it('a second cancel restocks nothing; another user cannot cancel', async () => {
      const sku = uid('life');
      await createSku(api, { sku, stock: 5, perUserLimit: 2 });
      const jwt = await token('erin');
      const order = (await buy(api, sku, jwt, `${sku}-1`, 2)).body;
      const mallory = await post(api, `/v1/orders/${order.orderId}/cancel`, await token('mallory'));
      assert.equal(mallory.status, 404);
      assert.equal((await redisState(api.engine, sku)).available, 3);
      const first = await post(api, `/v1/orders/${order.orderId}/cancel`, jwt);
      assert.equal(first.status, 200);
      assert.equal(first.body.status, 'cancelled');
      const s1 = await redisState(api.engine, sku);
      assert.equal(s1.available, 5);
      const second = await post(api, `/v1/orders/${order.orderId}/cancel`, jwt);
      assert.equal(second.status, 200);
      assert.deepEqual(second.body, first.body);
      assert.deepEqual(await redisState(api.engine, sku), s1, 'the second cancel changed nothing');
      assert.equal(s1.seq, 2);
      // Units and the user's limit are free again.
      assert.equal((await buy(api, sku, jwt, `${sku}-2`, 2)).status, 201);
      // A cancelled order cannot be confirmed.
      const confirm = await post(api, `/v1/orders/${order.orderId}/confirm`, jwt);
      assert.equal(confirm.status, 409);
      assert.equal(confirm.body.error.code, 'ORDER_NOT_CONFIRMABLE');
    });

    it('confirm keeps the units; a confirmed order can still be cancelled', async () => {
      const sku = uid('conf');
      await createSku(api, { sku, stock: 5, perUserLimit: 2 });
      const jwt = await token('frank');
      const order = (await buy(api, sku, jwt, `${sku}-1`, 1)).body;
      const c1 = await post(api, `/v1/orders/${order.orderId}/confirm`, jwt);
      assert.equal(c1.status, 200);
      assert.equal(c1.body.status, 'confirmed');
      assert.equal((await post(api, `/v1/orders/${order.orderId}/confirm`, jwt)).status, 200);
      assert.equal((await redisState(api.engine, sku)).available, 4);
      assert.equal((await redisState(api.engine, sku)).seq, 2);
      const cancel = await post(api, `/v1/orders/${order.orderId}/cancel`, jwt);
      assert.equal(cancel.body.status, 'cancelled');
      assert.equal((await redisState(api.engine, sku)).available, 5);
    });

    it('confirm after expiry is 409 ORDER_EXPIRED, and so is it after the sweeper ran', async () => {
      const sku = uid('exp');
      await createSku(api, { sku, stock: 5, perUserLimit: 2, reservationTtlSeconds: 1 });
      const jwt = await token('grace');
      const order = (await buy(api, sku, jwt, `${sku}-1`, 1)).body;
      await sleep(1100);
      const late = await post(api, `/v1/orders/${order.orderId}/confirm`, jwt);
      assert.equal(late.status, 409);
      assert.equal(late.body.error.code, 'ORDER_EXPIRED');
      assert.equal(await api.engine.inventory.expire(sku, order.orderId), 'expired');
      const after = await post(api, `/v1/orders/${order.orderId}/confirm`, jwt);
      assert.equal(after.body.error.code, 'ORDER_EXPIRED');
      const cancel = await post(api, `/v1/orders/${order.orderId}/cancel`, jwt);
      assert.equal(cancel.status, 409);
      assert.equal(cancel.body.error.code, 'ORDER_NOT_CANCELLABLE');
      assert.equal((await redisState(api.engine, sku)).available, 5);
    });
  });

  it('sold-out fast path: refusals skip the script; restocked units are sold again within the flag time, on any instance', async () => {
    const fast = await startApi({ SOLD_OUT_CACHE_MS: '1000' });
    try {
      const sku = uid('fast');
      await createSku(fast, { sku, stock: 1, perUserLimit: 1 });
      const winner = await token('w1');
      const won = await buy(fast, sku, winner, `${sku}-w`, 1);
      assert.equal(won.status, 201);
      const evalshaCalls = async () => {
        const info = await fast.engine.redis.info('commandstats');
        const m = /cmdstat_evalsha:calls=(\d+)/.exec(info);
        const e = /cmdstat_eval:calls=(\d+)/.exec(info);
        return Number(m?.[1] ?? 0) + Number(e?.[1] ?? 0);
      };
      const before = await evalshaCalls();
      const refusals = await Promise.all(
        Array.from({ length: 50 }, async (_, i) =>
          buy(fast, sku, await token(`l${i}`), `${sku}-l${i}`, 1),
        ),
      );
      assert.ok(refusals.every((r) => r.status === 409 && r.body.error.code === 'SOLD_OUT'));
      assert.equal(await evalshaCalls(), before, 'no script ran for the refusals');
      // A retry of the winning key is still replayed while the flag is up.
      const replay = await buy(fast, sku, winner, `${sku}-w`, 1);
      assert.equal(replay.status, 201);
      assert.equal(replay.replayed, true);
      // Units come back through another instance: this one sells them once its flag lapses.
      const restock = await fetch(`${api.url}/v1/admin/skus/${sku}/restock`, {
        method: 'POST',
        headers: api.admin,
        body: JSON.stringify({ quantity: 1, reason: 'return' }),
      });
      assert.equal(restock.status, 200);
      const deadline = Date.now() + 3000;
      let sold = false;
      for (let i = 0; !sold && Date.now() < deadline; i++) {
        sold = (await buy(fast, sku, await token(`late${i}`), `${sku}-late${i}`, 1)).status === 201;
        if (!sold) await sleep(100);
      }
      assert.ok(sold, 'the restocked unit sold within the flag time');
    } finally {
      await fast.stop();
    }
  });

  it('a SKU whose Redis state is missing answers 503 with Retry-After, never zero or fresh stock', async () => {
    const sku = uid('lost');
    await createSku(api, { sku, stock: 5, perUserLimit: 2 });
    const jwt = await token('heidi');
    assert.equal((await buy(api, sku, jwt, `${sku}-1`, 1)).status, 201);
    const k = api.engine.keys.forSku(sku);
    await api.engine.redis.del(k.sku);
    const res = await buy(api, sku, jwt, `${sku}-2`, 1);
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'SKU_UNAVAILABLE');
    assert.equal(res.body.error.retryable, true);
    const view = await fetch(`${api.url}/v1/skus/${sku}`);
    assert.equal(view.status, 503);
    assert.ok(Number(view.headers.get('retry-after')) >= 1);
    const restock = await fetch(`${api.url}/v1/admin/skus/${sku}/restock`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify({ quantity: 1, reason: 'x' }),
    });
    assert.equal(restock.status, 503);
    assert.equal(
      await api.engine.redis.exists(k.sku),
      0,
      'no request recreated the state as fresh stock',
    );
  });

  // The stream and the expiry index are the keys the script only writes: a wrong type on
  // either must be found before the SKU, the user's count or the order change.
  for (const which of ['events', 'expiries'] as const)
    it(`a purchase that would fail partway is refused before any write (${which})`, async () => {
      const sku = uid('partial');
      await createSku(api, { sku, stock: 5, perUserLimit: 2 });
      const k = api.engine.keys.forSku(sku);
      const jwt = await token('ivan');
      const saved = await api.engine.redis.dumpBuffer(k[which]);
      await api.engine.redis.del(k[which]);
      await api.engine.redis.set(k[which], 'not a stream or zset');
      try {
        const before = await snapshot(api.engine.redis, skuPatterns(sku, 'ivan'));
        const res = await buy(api, sku, jwt, `${sku}-1`, 1);
        assert.equal(res.status, 500);
        assert.equal(res.body.error.code, 'INTERNAL');
        assert.ok(!JSON.stringify(res.body).includes('fs:{'), 'no internals in the answer');
        const after = await snapshot(api.engine.redis, skuPatterns(sku, 'ivan'));
        // Only the user's idempotency claim (outside the SKU) may be new.
        for (const [key, value] of after)
          if (!key.includes(':idem:')) assert.equal(value, before.get(key), key);
        assert.deepEqual(
          [...after.keys()].filter((x) => !x.includes(':idem:')).sort(),
          [...before.keys()].filter((x) => !x.includes(':idem:')).sort(),
        );
      } finally {
        await api.engine.redis.del(k[which]);
        if (saved) await api.engine.redis.restore(k[which], 0, saved);
      }
      assert.equal(
        (await buy(api, sku, jwt, `${sku}-1`, 1)).status,
        201,
        'works again once the key is sound',
      );
    });
});
