// A pass resolves an incident only when it could judge that kind for that SKU; the DB
// writer raises DRIFT as it applies events (under load, where sequences are never equal);
// and the reconciler's fence survives Redis losing its data. On an isolated pipeline (own
// Redis, own Kafka topic): these tests bend Redis's state behind the engine.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IncidentStore } from '../../src/alerts/incidents.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { createRedlock, Leadership } from '../../src/clients/locks.js';
import { buy, createSku, token, uid, waitForDrain, type RunningApi } from '../helpers.js';
import { startOwnPipeline } from './own-pipeline.js';

describe('reconciliation judges only what it can decide', () => {
  let own: Awaited<ReturnType<typeof startOwnPipeline>> | undefined;
  let eng: RunningApi;
  const skus: string[] = [];
  const drainMs = 90_000;

  before(async () => {
    own = await startOwnPipeline(['api', 'relay', 'writer'], skus);
    eng = own.api;
  });
  after(async () => {
    await own?.close();
  });

  const sku = async (prefix: string, stock: number) => {
    const id = uid(prefix);
    skus.push(id);
    await createSku(eng, { sku: id, stock, perUserLimit: 5 });
    return id;
  };
  const store = () => new IncidentStore(eng.engine.db, () => []);
  /** A reconciler with no history, like the API's on-demand pass (no lease: it writes). */
  const fresh = (leadership?: Leadership) =>
    new Reconciler(
      eng.engine.redis,
      eng.engine.db,
      eng.engine.keys,
      store(),
      leadership,
      { intervalMs: 60_000, lagAlertAfterMs: 1_000 },
      eng.engine.log,
    );
  const openOf = (skuId: string, kind: string) =>
    eng.engine.db.alertIncident.findFirst({ where: { skuId, kind, status: 'open' } });

  it('the writer raises DRIFT when PostgreSQL stock after an event differs from Redis, and a pass at unequal sequences does not resolve it', async () => {
    const id = await sku('wdrift', 10);
    await waitForDrain(eng.engine, [id], drainMs);
    const k = eng.engine.keys.forSku(id);
    // Redis gains 3 units behind the engine; the next event carries them in stockAfter.
    await eng.engine.redis.hincrby(k.sku, 'available', 3);
    await eng.engine.redis.hincrby(k.sku, 'supplied', 3);
    assert.equal((await buy(eng, id, await token('wd1'), `${id}-1`, 1)).status, 201);
    const [c] = await waitForDrain(eng.engine, [id], drainMs);
    const seq = c!.db.sequence;
    const drift = await openOf(id, 'DRIFT');
    assert.ok(drift, 'DRIFT opened by the writer, with no reconciler running');
    assert.equal(drift.redisAvailable, 12);
    assert.equal(drift.dbAvailable, 9);
    assert.equal(drift.redisSequence, seq);
    assert.equal(drift.dbSequence, seq);
    assert.equal((drift.detail as { source?: string }).source, 'writer');

    // Steady load: Redis always a step ahead. Unequal sequences cannot judge DRIFT.
    await eng.engine.redis.hincrby(k.sku, 'seq', 1);
    const busy = await fresh().pass([id]);
    assert.ok(
      !busy.resolved.some((r) => r.kind === 'DRIFT'),
      `resolved ${JSON.stringify(busy.resolved)}`,
    );
    assert.ok(await openOf(id, 'DRIFT'), 'still open after a pass at unequal sequences');

    // Equal sequences and equal stock: now it is judged clean, and resolved.
    await eng.engine.redis.hincrby(k.sku, 'seq', -1);
    await eng.engine.redis.hincrby(k.sku, 'available', -3);
    await eng.engine.redis.hincrby(k.sku, 'supplied', -3);
    const clean = await fresh().pass([id]);
    assert.deepEqual(clean.findings, []);
    assert.ok(clean.resolved.some((r) => r.sku === id && r.kind === 'DRIFT'));
  });

  it('an on-demand pass from a fresh reconciler does not resolve an open LAG it cannot judge', async () => {
    const id = await sku('odlag', 10);
    const [c] = await waitForDrain(eng.engine, [id], drainMs);
    const k = eng.engine.keys.forSku(id);
    const seq = c!.db.sequence;
    // Redis one event ahead, PostgreSQL not moving: the periodic leader opened LAG.
    await eng.engine.redis.hincrby(k.sku, 'seq', 1);
    await store().open({
      skuId: id,
      kind: 'LAG',
      redisAvailable: 10,
      dbAvailable: 10,
      redisSequence: seq + 1,
      dbSequence: seq,
      detail: { lag: 1 },
    });
    const report = await fresh().pass([id]);
    assert.ok(
      !report.resolved.some((r) => r.kind === 'LAG'),
      `resolved ${JSON.stringify(report.resolved)}`,
    );
    assert.ok(await openOf(id, 'LAG'), 'LAG still open');

    // Lag 0: any instance can judge that, and resolves it.
    await eng.engine.redis.hincrby(k.sku, 'seq', -1);
    const caughtUp = await fresh().pass([id]);
    assert.ok(caughtUp.resolved.some((r) => r.sku === id && r.kind === 'LAG'));
  });

  it('after Redis loses its data a new reconciler leader still writes incidents', async () => {
    const db = eng.engine.db;
    // SKUs in PostgreSQL only: Redis has no state for them (REDIS_BEHIND).
    const make = async (prefix: string) => {
      const id = uid(prefix);
      skus.push(id);
      await db.sku.create({
        data: {
          id,
          name: id,
          totalSupplied: 5,
          available: 5,
          perUserLimit: 1,
          reservationTtlSeconds: 60,
        },
      });
      return id;
    };
    const resource = `fs:leader:${uid('fence')}`;
    const leader = () => fresh(new Leadership(createRedlock(eng.engine.redis), resource, 5_000));

    const first = await make('fence-a');
    const a = leader();
    await a.pass([first]);
    const opened = await a.pass([first]);
    assert.equal(opened.led, true);
    assert.ok(opened.opened.some((o) => o.sku === first && o.kind === 'REDIS_BEHIND'));
    await a.stop();
    // Later terms write too (each refreshes the open incident): the fence moves on, as it
    // does over a day of leadership changes.
    for (let term = 0; term < 5; term++) {
      const next = leader();
      await next.pass([first]);
      assert.equal((await next.pass([first])).led, true);
      await next.stop();
    }

    // Redis restarted empty: leases, counters, everything gone.
    await eng.engine.redis.flushall();
    const second = await make('fence-b');
    const b = leader();
    assert.equal((await b.pass([second])).led, true, 'the new leader is not refused');
    const after = await b.pass([second]);
    assert.equal(after.led, true, 'the new leader is not refused by the fence');
    assert.ok(after.opened.some((o) => o.sku === second && o.kind === 'REDIS_BEHIND'));
    await b.stop();
    assert.ok(await openOf(second, 'REDIS_BEHIND'));
  });
});
