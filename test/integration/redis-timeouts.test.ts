// The Redis client's deadlines, against a redis-server of this test's own that is made to
// hang (SIGSTOP): an ordinary command fails after REDIS_COMMAND_TIMEOUT_MS, while a long
// script (the SKU rebuild) keeps its own, longer deadline and its answer.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { KeySpace } from '../../src/shared/keys.js';
import { closeRedis, createRedis } from '../../src/clients/redis.js';
import { testConfig, uid } from '../helpers.js';
import { ownRedis, type OwnRedis } from '../support/redis-server.js';

describe('Redis command deadlines', { timeout: 60_000 }, () => {
  let server: OwnRedis;
  before(async () => {
    server = await ownRedis();
  });
  after(() => server.close());

  it('a hung server fails an ordinary command after its timeout, but a SKU rebuild script keeps its long deadline', async () => {
    const cfg = testConfig({
      REDIS_URL: server.url,
      REDIS_COMMAND_TIMEOUT_MS: '200',
      REDIS_LONG_COMMAND_TIMEOUT_MS: '10000',
    });
    const redis = createRedis(cfg);
    redis.on('error', () => undefined);
    try {
      assert.equal(await redis.ping(), 'PONG');
      const sku = uid('slow');
      const k = new KeySpace(cfg.INVENTORY_PARTITIONS).forSku(sku);
      server.freeze();
      const t0 = Date.now();
      const load = redis.fsLoad(
        4,
        k.sku,
        k.users,
        k.expiries,
        k.restoredClaims,
        sku,
        5,
        5,
        1,
        0,
        0,
        60,
        0,
        0,
        0,
        0,
        0, // no admission settings
        0, // their version
        0,
      );
      const get = redis.get('anything').then(
        () => 'answered',
        (err: Error) => err.message,
      );
      assert.equal(await get, 'Command timed out');
      assert.ok(Date.now() - t0 < 1500, `timed out after ${Date.now() - t0} ms`);
      await sleep(800);
      server.thaw();
      assert.deepEqual(await load, [1], 'the rebuild ran and its answer came back');
    } finally {
      await closeRedis(redis);
    }
  });
});
