// An entry the relay acknowledged but did not delete (a crash between the two steps of old)
// must not hold back rebuilds of its partition forever: the "drained" check looks at what
// is undelivered or pending, not at the stream's length.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { RELAY_GROUP } from '../../src/pipeline/relay.js';
import {
  buy,
  createSku,
  startEngine,
  token,
  uid,
  waitForDrain,
  type RunningApi,
} from '../helpers.js';
import { ownRedis, type OwnRedis } from '../support/redis-server.js';

describe('stream leftovers', () => {
  let redis: OwnRedis;
  let api: RunningApi;
  before(async () => {
    redis = await ownRedis();
    api = await startEngine(['writer', 'relay', 'api'], { REDIS_URL: redis.url });
  });
  after(async () => {
    await api?.stop();
    await redis?.close();
  });

  it('an acknowledged entry left in the stream does not block a rebuild', async () => {
    const sku = uid('left');
    await createSku(api, { sku, stock: 10, perUserLimit: 5 });
    const jwt = await token('left-user');
    assert.equal((await buy(api, sku, jwt, uid('k'))).status, 201);
    await waitForDrain(api.engine, [sku]);
    const k = api.engine.keys.forSku(sku);
    // A leftover: delivered to the relay's group and acknowledged, never deleted. Written
    // as the group's own bookkeeping would have it, in one transaction: the relay waits in
    // a blocking read, which would take an entry added on its own at once.
    await api.engine.redis
      .multi()
      .xadd(k.events, '*', 'e', '{"leftover":true}')
      .xgroup('SETID', k.events, RELAY_GROUP, '$')
      .exec();
    assert.equal(await api.engine.redis.xlen(k.events), 1);

    await api.engine.redis.del(k.sku); // the SKU's state is lost
    const deadline = Date.now() + 20_000;
    let r = await buy(api, sku, jwt, uid('k'));
    while (r.status === 503 && Date.now() < deadline) {
      await sleep(200);
      r = await buy(api, sku, jwt, uid('k'));
    }
    assert.equal(r.status, 201, `rebuilt despite the leftover: ${JSON.stringify(r.body)}`);
  });
});
