// A flood of made-up SKU ids must not become a flood of PostgreSQL queries: an id
// PostgreSQL does not know is remembered briefly, on the public stock view as on purchases.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Inventory } from '../../src/inventory/inventory.js';
import type { Db } from '../../src/clients/db.js';
import { startApi, uid, type RunningApi } from '../helpers.js';

describe('unknown SKU lookups', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi();
  });
  after(() => api.stop());

  it('asks PostgreSQL about an unknown id once, not on every request', async () => {
    let lookups = 0;
    // The real database, counted: every SKU lookup still reaches PostgreSQL.
    const counted = api.engine.db.$extends({
      query: {
        sku: {
          findUnique({ args, query }) {
            lookups += 1;
            return query(args);
          },
        },
      },
    }) as unknown as Db;
    const cfg = api.engine.cfg;
    const inventory = new Inventory(api.engine.redis, counted, api.engine.keys, {
      idempotencyTtlSeconds: cfg.IDEMPOTENCY_TTL_SECONDS,
      orderRetentionSeconds: cfg.ORDER_RETENTION_SECONDS,
      soldOutCacheMs: cfg.SOLD_OUT_CACHE_MS,
      defaultReservationTtlSeconds: cfg.DEFAULT_RESERVATION_TTL_SECONDS,
      waitForPipeline: async () => true,
      withLock: async (_r, fn) => fn(),
    });
    const id = uid('nosuch');
    for (let i = 0; i < 50; i++)
      await assert.rejects(
        inventory.getSku(id),
        (e: { code?: string }) => e.code === 'SKU_NOT_FOUND',
      );
    assert.equal(lookups, 1);
    const res = await fetch(`${api.url}/v1/skus/${uid('nosuch')}`);
    assert.equal(res.status, 404);
  });
});
