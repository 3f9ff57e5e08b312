// An operator's SKU creation that answered 503 may still have been made: PostgreSQL is
// written first, then Redis. Sending the same creation again must answer as the creation
// it is (201, marked replayed) and leave a SKU that sells; a different definition under
// the same id stays 409 SKU_EXISTS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buy, startEngine, token, uid, type RunningApi } from '../helpers.js';
import { ownRedis, type OwnRedis } from '../support/redis-server.js';

describe('creating a SKU again after a 503', () => {
  let redis: OwnRedis;
  let api: RunningApi;
  before(async () => {
    redis = await ownRedis();
    // The rebuild waits until the pipeline holds no event of the SKU's partition, events of
    // earlier tests included: the relay and the writer run too (without them, an earlier
    // test's last events left in Kafka held the rebuild back, and the SKU answered 503).
    api = await startEngine(['writer', 'relay', 'api'], { REDIS_URL: redis.url });
  });
  after(async () => {
    await api?.stop();
    await redis?.close();
  });

  const create = (body: unknown) =>
    fetch(`${api.url}/v1/admin/skus`, {
      method: 'POST',
      headers: api.admin,
      body: JSON.stringify(body),
    }).then(async (r) => ({
      status: r.status,
      replayed: r.headers.get('idempotent-replayed') === 'true',
      body: (await r.json()) as { sku?: string; available?: number; error?: { code: string } },
    }));

  it('the same definition again is the creation replayed; another definition is 409', async () => {
    const sku = uid('again');
    const definition = { sku, name: 'Again', stock: 3, perUserLimit: 2 };
    await redis.kill();
    const first = await create(definition);
    assert.equal(first.status, 503, JSON.stringify(first.body));
    await redis.start();

    let again = await create(definition);
    for (let i = 0; again.status === 503 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200)); // the client reconnects
      again = await create(definition);
    }
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.replayed, true);
    assert.equal(again.body.available, 3);

    // Its Redis state is rebuilt from PostgreSQL meanwhile: 503 with Retry-After until then.
    const jwt = await token(uid('u'));
    const key = uid('k');
    let sold = await buy(api, sku, jwt, key, 1);
    for (let i = 0; sold.status === 503 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 200));
      sold = await buy(api, sku, jwt, key, 1);
    }
    assert.equal(sold.status, 201, `the SKU sells: ${JSON.stringify(sold.body)}`);

    const other = await create({ ...definition, stock: 4 });
    assert.equal(other.status, 409);
    assert.equal(other.body.error?.code, 'SKU_EXISTS');
  });
});
