// An idle relay waits in a blocking read instead of polling: about two reads per partition
// per RELAY_BLOCK_MS rather than two every 50 ms, and an entry written meanwhile still
// leaves at once (the blocked read returns with it).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { buy, createSku, startEngine, token, uid, until, type RunningApi } from '../helpers.js';
import { ownRedis, type OwnRedis } from '../support/redis-server.js';

describe('relay at rest', () => {
  let redis: OwnRedis;
  let api: RunningApi;
  before(async () => {
    redis = await ownRedis();
    api = await startEngine(['relay', 'api'], { REDIS_URL: redis.url, RELAY_BLOCK_MS: '1000' });
  });
  after(async () => {
    await api?.stop();
    await redis?.close();
  });

  const reads = async () =>
    Number(
      /cmdstat_xreadgroup:calls=(\d+)/.exec(await api.engine.redis.info('commandstats'))?.[1] ?? 0,
    );

  it('reads each partition about twice per block time, and relays a new entry at once', async () => {
    await sleep(1500); // leases taken, groups made
    const before = await reads();
    await sleep(3000);
    const idle = (await reads()) - before;
    const partitions = api.engine.keys.partitions;
    // Polling every 50 ms made 2 reads per partition per 50 ms: 1,920 here.
    assert.ok(idle <= partitions * 2 * 4, `${idle} reads in 3 s for ${partitions} partitions`);

    const sku = uid('idle');
    await createSku(api, { sku, stock: 5, perUserLimit: 5 });
    assert.equal((await buy(api, sku, await token('idle-user'), uid('k'))).status, 201);
    const events = api.engine.keys.forSku(sku).events;
    await until(
      'the entry was relayed',
      async () => ((await api.engine.redis.xlen(events)) === 0 ? true : undefined),
      10_000,
    );
  });
});
