// Purchases of one SKU the API has in hand together are decided in one call of the purchase
// script (src/inventory/purchase-batches.ts), each as if it were alone: the same answers,
// stock, held units, sequence and events as the same purchases sent one after another, on
// both purchase paths, and both stores agree afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { AppError } from '../../src/shared/errors.js';
import { parseOrder } from '../../src/shared/keys.js';
import type { Engine } from '../../src/engine.js';
import { commandsSent } from '../support/commands.js';
import {
  assertPipelineExact,
  assertStoresAgree,
  redisState,
  startApi,
  startEngine,
  uid,
  type RunningApi,
} from '../helpers.js';

interface Op {
  user: number;
  key: number;
  quantity: number;
}

/** A purchase's outcome: created, replayed (of the op that created it), or the error code. */
type Outcome = string;

async function runOps(
  engine: Engine,
  sku: string,
  ops: Op[],
  run: string,
  together: boolean,
): Promise<Outcome[]> {
  const firstOf = new Map<string, number>(); // order id -> the op that created it
  const one = (op: Op) =>
    engine.inventory.purchase(`${run}-u${op.user}`, sku, op.quantity, `${run}-k${op.key}`).then(
      (r) => r,
      (e: unknown) => {
        if (e instanceof AppError) return e.code;
        throw e;
      },
    );
  const results = together
    ? await Promise.all(ops.map(one))
    : await ops.reduce<Promise<Awaited<ReturnType<typeof one>>[]>>(
        async (acc, op) => [...(await acc), await one(op)],
        Promise.resolve([]),
      );
  return results.map((r, i) => {
    if (typeof r === 'string') return r;
    if (!r.replayed) {
      firstOf.set(r.order.orderId, i);
      return 'created';
    }
    return `replay of ${firstOf.get(r.order.orderId) ?? 'an unknown order'}`;
  });
}

/** The ops sent together, all decided in one call of the purchase script: their outcomes. */
async function inOneCall(engine: Engine, sku: string, ops: Op[], run: string): Promise<Outcome[]> {
  let outcomes: Outcome[] = [];
  const sent = await commandsSent(engine.redis, async () => {
    outcomes = await runOps(engine, sku, ops, run, true);
  });
  assert.equal(sent.get('evalsha') ?? sent.get('eval'), 1, `${ops.length} purchases, one call`);
  return outcomes;
}

/**
 * Both stores agree on the SKU, and PostgreSQL has each of its events once, in sequence
 * (the relay and writer of `piped` serve every engine here: they share one Redis).
 */
async function eventsReachedPostgres(piped: Engine, skus: string[]): Promise<number[]> {
  const compared = await assertStoresAgree(piped, skus);
  const dbOrders = await piped.db.order.findMany({ where: { skuId: { in: skus } } });
  await assertPipelineExact(piped, skus, dbOrders);
  return compared.map((c) => c.db.sequence);
}

describe('purchases decided in batches', () => {
  let single: RunningApi;
  let cluster: RunningApi;
  let batched: RunningApi;
  let alone: RunningApi;
  before(async () => {
    // Bursts wide enough that no op here is rate limited, whatever the timing: the limit's
    // arithmetic still runs for every purchase.
    const limits = { RATE_LIMIT_BUYER_PER_S: '5', RATE_LIMIT_BUYER_BURST: '1000' };
    // The relay and writer run beside the single-node engine: the stores are compared.
    single = await startEngine(['writer', 'relay', 'api'], limits, { claimInScript: true });
    cluster = await startApi(limits, { claimInScript: false });
    // The property compares what the script decides: no answer from the sold-out memory,
    // which skips the script (and so answers SOLD_OUT where the script, checking the
    // buyer's limit first, may say LIMIT_EXCEEDED).
    const decideAll = { ...limits, SOLD_OUT_CACHE_MS: '0' };
    batched = await startApi(decideAll, { claimInScript: true });
    alone = await startApi(decideAll, { claimInScript: true, purchaseBatchMax: 1 });
  });
  after(async () => {
    await single?.stop();
    await cluster?.stop();
    await batched?.stop();
    await alone?.stop();
  });

  for (const path of ['claim in the script', 'claim before the script'] as const)
    it(`thirty purchases in hand together go in one call and are answered as one by one (${path})`, async () => {
      const api = path === 'claim in the script' ? single : cluster;
      const run = uid('pb');
      const sku = uid('pb');
      await api.engine.inventory.createSku({ sku, name: sku, stock: 10, perUserLimit: 2 });
      const ops: Op[] = [
        // One key three times: one order, two replays of it.
        { user: 1, key: 1, quantity: 1 },
        { user: 1, key: 1, quantity: 1 },
        { user: 1, key: 1, quantity: 1 },
        // Three keys of one buyer with a limit of two: the third is refused.
        { user: 2, key: 1, quantity: 1 },
        { user: 2, key: 2, quantity: 1 },
        { user: 2, key: 3, quantity: 1 },
        // One key with another body.
        { user: 3, key: 1, quantity: 2 },
        { user: 3, key: 1, quantity: 1 },
        // Five units left for twenty buyers.
        ...Array.from({ length: 22 }, (_, i) => ({ user: 10 + i, key: 1, quantity: 1 })),
      ];
      assert.deepEqual(await inOneCall(api.engine, sku, ops, run), [
        'created',
        'replay of 0',
        'replay of 0',
        'created',
        'created',
        'LIMIT_EXCEEDED',
        'created',
        'IDEMPOTENCY_KEY_REUSED',
        ...Array.from({ length: 5 }, () => 'created'),
        ...Array.from({ length: 17 }, () => 'SOLD_OUT'),
      ]);

      const s = await redisState(api.engine, sku);
      assert.equal(s.available, 0);
      assert.equal(s.seq, 9);
      const held = Object.values(s.users).reduce((a, b) => a + b, 0);
      assert.equal(held + s.available, s.supplied, 'every unit is on sale or held');
      assert.ok(
        Object.values(s.users).every((n) => n <= 2),
        'no buyer over the limit',
      );
      // PostgreSQL has every event once, in sequence, and the same orders as Redis.
      assert.deepEqual(await eventsReachedPostgres(single.engine, [sku]), [9]);
      assert.equal(await single.engine.db.order.count({ where: { skuId: sku } }), 9);
    });

  it('a purchase refused for a key of the wrong type is refused alone: the rest of its call are sold, and counted', async () => {
    const run = uid('pbf');
    const sku = uid('pbf');
    const engine = single.engine;
    await engine.inventory.createSku({ sku, name: sku, stock: 10, perUserLimit: 5 });
    // The second buyer's rate-limit key holds a hash: the script refuses that purchase
    // (nothing of it written, an internal error), after the first has written its order.
    await engine.redis.hset(engine.keys.rateLimit(sku, 'b', `${run}-u2`), 'x', '1');
    const ops = [
      { user: 1, key: 1, quantity: 1 },
      { user: 2, key: 1, quantity: 1 },
      { user: 3, key: 1, quantity: 2 },
    ];
    assert.deepEqual(await inOneCall(engine, sku, ops, run), ['created', 'INTERNAL', 'created']);
    const s = await redisState(engine, sku);
    assert.deepEqual(
      { available: s.available, seq: s.seq, users: s.users },
      { available: 7, seq: 2, users: { [`${run}-u1`]: 1, [`${run}-u3`]: 2 } },
    );
    assert.deepEqual(await eventsReachedPostgres(engine, [sku]), [2]);
    assert.equal(await engine.db.order.count({ where: { skuId: sku } }), 2);
    await engine.redis.del(engine.keys.rateLimit(sku, 'b', `${run}-u2`));
  });

  // Values no engine writes, met by a purchase after an earlier one of its call has
  // written: each must refuse its own purchase before any write of its own, or the call
  // fails after the first purchase's order and event, and before the SKU's stock and
  // sequence are written (the units would sell twice and the sequence repeat).
  for (const damage of [
    'a retry whose order an older engine left with a quantity that is not a number',
    "a buyer whose held units Redis cannot count ('01')",
  ] as const)
    it(`${damage} is refused alone, after another purchase of its call wrote`, async () => {
      const run = uid('pbd');
      const sku = uid('pbd');
      const engine = batched.engine;
      await engine.inventory.createSku({ sku, name: sku, stock: 10, perUserLimit: 5 });
      const k = engine.keys.forSku(sku);
      let before = 0;
      // Damage left behind would trip other tests' scans of the partition's orders.
      let damaged = k.users;
      if (damage.startsWith('a retry')) {
        const first = await engine.inventory.purchase(`${run}-u2`, sku, 1, `${run}-k1`);
        const o = parseOrder((await engine.redis.get(k.order(first.order.orderId)))!)!;
        damaged = k.order(first.order.orderId);
        await engine.redis.del(damaged);
        await engine.redis.hset(damaged, {
          user: o.user,
          sku: o.sku,
          quantity: 'x',
          status: o.status,
          createdAt: o.createdAt,
          expiresAt: o.expiresAt,
        });
        before = 1;
      } else {
        await engine.redis.hset(k.users, `${run}-u2`, '01');
      }
      try {
        const ops = [
          { user: 1, key: 1, quantity: 1 },
          { user: 2, key: 1, quantity: 1 },
        ];
        assert.deepEqual(await inOneCall(engine, sku, ops, run), ['created', 'INTERNAL']);
        const s = await redisState(engine, sku);
        assert.deepEqual(
          { available: s.available, seq: s.seq },
          { available: 9 - before, seq: 1 + before },
          'the stock and sequence count the purchase that was made',
        );
        assert.equal(s.users[`${run}-u1`], 1);
      } finally {
        await engine.redis.del(damaged);
      }
    });

  it('any purchases in hand together get the answers they would get one by one (property)', async () => {
    const op = fc.record({
      user: fc.integer({ min: 0, max: 3 }),
      key: fc.integer({ min: 0, max: 2 }),
      quantity: fc.integer({ min: 1, max: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(op, { minLength: 1, maxLength: 40 }),
        async (stock, perUserLimit, ops) => {
          const run = uid('pbp');
          const decided: { outcomes: Outcome[]; state: unknown }[] = [];
          const skus: string[] = [];
          for (const [engine, together] of [
            [batched.engine, true],
            [alone.engine, false],
          ] as const) {
            const sku = uid('pbp');
            skus.push(sku);
            await engine.inventory.createSku({ sku, name: sku, stock, perUserLimit });
            const outcomes = await runOps(engine, sku, ops, run + String(together), together);
            const s = await redisState(engine, sku);
            decided.push({
              outcomes,
              state: {
                available: s.available,
                seq: s.seq,
                users: Object.fromEntries(
                  Object.entries(s.users).map(([u, n]) => [u.slice(u.lastIndexOf('-')), n]),
                ),
              },
            });
          }
          assert.deepEqual(decided[0], decided[1]);
          const [batchedEvents, aloneEvents] = await eventsReachedPostgres(single.engine, skus);
          assert.equal(batchedEvents, aloneEvents, 'as many events');
        },
      ),
      { numRuns: 25, includeErrorInReport: true },
    );
  });
});
