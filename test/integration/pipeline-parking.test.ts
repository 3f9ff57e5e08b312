// No single event can stop a partition: events PostgreSQL refuses are parked with their
// offset and reason, alerted (ANOMALY incident, webhook), and the partition moves on.
// Transient failures are never parked. Runs on an isolated pipeline (own Redis, own
// Kafka topic and writer group): a poisoned partition can stall only this test.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KafkaMessage } from 'kafkajs';
import { WebhookDispatcher } from '../../src/alerts/dispatcher.js';
import { IncidentStore } from '../../src/alerts/incidents.js';
import { createDb, type Db } from '../../src/clients/db.js';
import { isPermanent, sqlState } from '../../src/pipeline/db-failures.js';
import { applyOrPark } from '../../src/pipeline/writer.js';
import { buy, createSku, token, uid, until, waitForDrain, type RunningApi } from '../helpers.js';
import { startOwnPipeline, type OwnStack } from './own-pipeline.js';

const show = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

/** The engine's real error for a statement PostgreSQL refuses. */
async function refusal(db: Db, run: (db: Db) => Promise<unknown>): Promise<unknown> {
  try {
    await run(db);
  } catch (err) {
    return err;
  }
  throw new Error('PostgreSQL accepted it');
}

describe('a partition moves past events PostgreSQL cannot take', () => {
  let own: Awaited<ReturnType<typeof startOwnPipeline>> | undefined;
  let stack: OwnStack;
  let eng: RunningApi;
  let dispatcher: WebhookDispatcher;
  const skus: string[] = [];
  const drainMs = 90_000;

  before(async () => {
    own = await startOwnPipeline(['api', 'relay', 'writer'], skus);
    ({ stack, api: eng } = own);
    const cfg = eng.engine.cfg;
    dispatcher = new WebhookDispatcher(
      eng.engine.db,
      {
        secret: cfg.ALERT_WEBHOOK_SECRET,
        timeoutMs: cfg.WEBHOOK_TIMEOUT_MS,
        maxAgeMs: cfg.WEBHOOK_MAX_AGE_MS,
        pollMs: 200,
        baseBackoffMs: 100,
      },
      eng.engine.log,
    );
    dispatcher.start();
  });

  after(async () => {
    try {
      await dispatcher?.stop();
    } finally {
      await own?.close();
    }
  });

  const sku = async (prefix: string, stock: number, sameAs?: string) => {
    let id = uid(prefix);
    if (sameAs !== undefined) {
      const p = eng.engine.keys.partitionOf(sameAs);
      while (eng.engine.keys.partitionOf(id) !== p) id = uid(prefix);
    }
    skus.push(id);
    await createSku(eng, { sku: id, stock, perUserLimit: 5 });
    return id;
  };

  it('a restock whose reason holds NUL is parked with its offset and reason, alerted, and a later purchase still reaches PostgreSQL', async () => {
    const id = await sku('nul', 10);
    const db = eng.engine.db;
    const k = eng.engine.keys.forSku(id);
    // The API refuses such a reason; the script does not: inject through it directly
    // (the last argument is the script's supply limit).
    const reply = await eng.engine.redis.fsRestock(
      k.sku,
      k.events,
      id,
      5,
      'bad\u0000reason',
      2 ** 31 - 1,
    );
    assert.equal(Number(reply[0]), 1, `restock script answered ${JSON.stringify(reply)}`);
    const bought = await buy(eng, id, await token('nul1'), `${id}-1`, 1);
    assert.equal(bought.status, 201);

    const [c] = await waitForDrain(eng.engine, [id], drainMs);
    const order = await db.order.findUnique({ where: { id: bought.body.orderId as string } });
    assert.equal(order?.status, 'reserved', 'the purchase after the parked event is applied');

    const parked = await db.pipelineAnomaly.findMany({ where: { skuId: id } });
    assert.equal(parked.length, 1, show(parked));
    const a = parked[0]!;
    assert.equal(a.kind, 'PARKED');
    assert.equal(a.topic, stack.env.KAFKA_TOPIC);
    assert.equal(a.partition, k.partition);
    assert.match(a.offset, /^\d+$/);
    assert.match(a.reason, /^22P05: /, a.reason);
    assert.ok(a.payload.includes('"sku.restocked"') && a.payload.includes('\\u0000'), a.payload);

    // The parked restock is not applied: PostgreSQL misses its 5 units at equal sequences.
    assert.equal(c!.db.sequence, c!.redis!.sequence);
    assert.equal(c!.db.available, 9);
    assert.equal(c!.redis!.available, 14);

    const incident = await db.alertIncident.findFirst({
      where: { skuId: id, kind: 'ANOMALY', status: 'open' },
    });
    assert.ok(incident, 'ANOMALY incident open');
    assert.match(JSON.stringify(incident.detail), /22P05/);
    const queued = await db.webhookDelivery.findMany({ where: { incidentId: incident.id } });
    assert.ok(
      queued.some((d) => d.eventType === 'incident.opened'),
      'a webhook delivery is queued with the incident',
    );
    await until(
      'the ANOMALY webhook',
      async () =>
        stack.received.find(
          (r) => r.sku === id && r.kind === 'ANOMALY' && r.type === 'incident.opened',
        ),
      30_000,
    );
  });

  it('a restock beyond PostgreSQL integer range is parked and the partition moves on', async () => {
    const big = await sku('big', 100);
    const other = await sku('bigp', 10, big);
    const k = eng.engine.keys.forSku(big);
    // The restock script now refuses totals PostgreSQL cannot store; an event from before
    // that limit (or from any other producer) must still not stop the partition: lift the
    // script's limit (its last argument) to make one.
    const reply = await eng.engine.redis.fsRestock(k.sku, k.events, big, 2 ** 31, 'a lot', 2 ** 53);
    assert.equal(Number(reply[0]), 1, `restock script answered ${JSON.stringify(reply)}`);
    const bought = await buy(eng, other, await token('big1'), `${other}-1`, 2);
    assert.equal(bought.status, 201);
    await waitForDrain(eng.engine, [big, other], drainMs);
    const db = eng.engine.db;
    assert.equal(
      (await db.order.findUnique({ where: { id: bought.body.orderId as string } }))?.status,
      'reserved',
      'a later event of the same partition reaches PostgreSQL',
    );
    const parked = await db.pipelineAnomaly.findMany({ where: { skuId: big } });
    assert.equal(parked.length, 1, show(parked));
    assert.equal(parked[0]!.partition, k.partition);
    assert.match(parked[0]!.reason, /^22003: /, parked[0]!.reason);
    assert.equal((await db.sku.findUniqueOrThrow({ where: { id: big } })).totalSupplied, 100);
    assert.ok(
      await db.alertIncident.findFirst({ where: { skuId: big, kind: 'ANOMALY', status: 'open' } }),
    );
  });

  it('the failure classifier: data errors are permanent, an unreachable PostgreSQL is not', async () => {
    const db = eng.engine.db;
    const nul = await refusal(db, (d) => d.$queryRaw`SELECT ${'{"a":"\\u0000"}'}::jsonb`);
    assert.equal(sqlState(nul), '22P05');
    assert.equal(isPermanent(nul), true);
    const range = await refusal(db, (d) => d.$queryRaw`SELECT ${[2 ** 31]}::int[]`);
    assert.equal(sqlState(range), '22003');
    assert.equal(isPermanent(range), true);
    const down = createDb({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/flashsale',
      DATABASE_POOL_SIZE: 1,
    });
    try {
      const unreachable = await refusal(down, (d) => d.$queryRaw`SELECT 1`);
      assert.equal(isPermanent(unreachable), false);
      const inTx = await refusal(down, (d) => d.$transaction(async (tx) => tx.$queryRaw`SELECT 1`));
      assert.equal(isPermanent(inTx), false);
    } finally {
      await down.$disconnect();
    }
    // Serialization failure and deadlock: retried, never parked.
    assert.equal(
      isPermanent({ meta: { driverAdapterError: { cause: { originalCode: '40001' } } } }),
      false,
    );
    assert.equal(
      isPermanent({ meta: { driverAdapterError: { cause: { originalCode: '40P01' } } } }),
      false,
    );
  });

  it('a writer that cannot reach PostgreSQL parks nothing: the failure is thrown for a retry', async () => {
    const id = await sku('down', 10);
    const down = createDb({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/flashsale',
      DATABASE_POOL_SIZE: 1,
    });
    const event = {
      v: 1,
      type: 'sku.restocked',
      sku: id,
      seq: 1,
      delta: 5,
      stockAfter: 15,
      suppliedAfter: 15,
      quantity: 5,
      reason: 'bad\u0000reason',
      at: Date.now(),
    };
    const message = { offset: '7', value: Buffer.from(JSON.stringify(event)) } as KafkaMessage;
    try {
      await assert.rejects(
        applyOrPark(down, new IncidentStore(down, () => []), 'no-topic', 0, [message]),
      );
    } finally {
      await down.$disconnect();
    }
    const db = eng.engine.db;
    assert.equal(await db.pipelineAnomaly.count({ where: { skuId: id } }), 0);
    assert.equal((await db.sku.findUniqueOrThrow({ where: { id } })).lastSequence, 0);
  });
});
