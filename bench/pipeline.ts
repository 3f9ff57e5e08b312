// Pipeline benchmarks. Writer: events/s of the batching DB writer against a writer that
// applies one event per transaction, both consuming the same kind of events from Kafka in
// the same run. Lag: purchase accepted (Redis time in the event) to row in PostgreSQL
// (clock_timestamp() at insert), under a steady purchase load through the API.
import { randomBytes } from 'node:crypto';
import { Engine } from '../src/engine.js';
import { loadConfig } from '../src/shared/config.js';
import { ownRedis } from '../test/support/redis-server.js';
import { ACKS_ALL, createConsumer, createKafka, createProducer } from '../src/clients/kafka.js';
import { ensureTopic } from '../tools/services/services.js';
import { DbWriter } from '../src/pipeline/writer.js';
import { cpuDuring, kafkaPids, postgresPids, type Stage } from './cpu.js';
import { fmt, load, PG_BASELINE_TABLES, startServer, tokens, type Server } from './lib.js';

const hex = () => randomBytes(4).toString('hex');

/** Writes `count` purchase events for `skus` to a fresh topic; returns the topic. */
async function seedEvents(engine: Engine, skus: string[], count: number): Promise<string> {
  const topic = `bench-writer-${hex()}`;
  await ensureTopic(engine.cfg.KAFKA_BROKERS, topic, 4, () => undefined);
  for (const sku of skus)
    await engine.inventory.createSku({ sku, name: sku, stock: count, perUserLimit: count });
  const producer = createProducer(createKafka(engine.cfg, 'bench'));
  await producer.connect();
  const seq = new Map<string, number>();
  const now = Date.now();
  const run = hex();
  for (let start = 0; start < count; start += 1000) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const sku = skus[i % skus.length]!;
      const s = (seq.get(sku) ?? 0) + 1;
      seq.set(sku, s);
      const p = engine.keys.partitionOf(sku) % 4;
      const event = {
        v: 1,
        type: 'order.reserved',
        sku,
        seq: s,
        delta: -1,
        stockAfter: count - s,
        suppliedAfter: count,
        at: now,
        orderId: engine.keys.orderIdFor(engine.keys.partitionOf(sku)),
        userId: `wu${i % 1000}`,
        quantity: 1,
        status: 'reserved',
        idempotencyKey: `${run}-k${i}`,
        createdAt: now,
        expiresAt: now + 600000,
      };
      messages.push({ partition: p, key: sku, value: JSON.stringify(event) });
    }
    await producer.send({ topic, acks: ACKS_ALL, messages });
  }
  await producer.disconnect();
  return topic;
}

async function timeWriter(
  engine: Engine,
  topic: string,
  skus: string[],
  count: number,
  maxBatch: number,
): Promise<number> {
  const consumer = createConsumer(createKafka(engine.cfg, 'bench'), {
    groupId: `bench-${hex()}`,
    maxWaitTimeInMs: 50,
  });
  const writer = new DbWriter(engine.db, consumer, { topic, maxBatch, concurrency: 4 }, engine.log);
  const started = process.hrtime.bigint();
  await writer.start();
  for (;;) {
    const rows = await engine.db.$queryRaw<
      { n: bigint }[]
    >`SELECT coalesce(sum(last_sequence), 0)::bigint AS n FROM skus WHERE id = ANY(${skus}::text[])`;
    if (Number(rows[0]!.n) >= count) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await writer.stop();
  return count / seconds;
}

export async function writerBench(engine: Engine, opts: { events: number; singleEvents: number }) {
  const batchedSkus = Array.from({ length: 20 }, () => `wb-${hex()}`);
  const singleSkus = Array.from({ length: 20 }, () => `ws-${hex()}`);
  const t1 = await seedEvents(engine, batchedSkus, opts.events);
  const t2 = await seedEvents(engine, singleSkus, opts.singleEvents);
  const batched = await timeWriter(
    engine,
    t1,
    batchedSkus,
    opts.events,
    engine.cfg.WRITER_MAX_BATCH,
  );
  process.stderr.write(`  batched writer: ${fmt(batched)} events/s\n`);
  const single = await timeWriter(engine, t2, singleSkus, opts.singleEvents, 1);
  process.stderr.write(`  one event per transaction: ${fmt(single)} events/s\n`);
  return { batchedEventsPerS: batched, singleEventsPerS: single, ratio: batched / single };
}

export interface LagResult {
  purchasesPerS: number;
  events: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  statuses: Record<string, number>;
  /** CPU microseconds per accepted purchase, per server-side process, load to drained. */
  cpuUsPerPurchase: Record<string, number>;
}

/**
 * Steady purchases through the API, with the relay and the writer each in a process of its
 * own so each stage's CPU can be told apart; lag from the audit rows (Redis time in the
 * event to PostgreSQL's clock at insert). CPU is counted from the start of the load until
 * PostgreSQL has every event.
 */
export async function lagBench(opts: { rate: number; durationS: number }): Promise<LagResult> {
  // A redis-server, Kafka topic and writer group of the bench's own, so no backlog another
  // bench left behind rides along; the database is the shared one, as deployed.
  const redis = await ownRedis();
  const stores = {
    REDIS_URL: redis.url,
    KAFKA_TOPIC: `bench-lag-${hex()}`,
    KAFKA_WRITER_GROUP: `bench-lag-${hex()}`,
  };
  const engine = new Engine(
    loadConfig({ ...process.env, ...stores, LOG_LEVEL: 'warn' }),
    'bench-lag',
  );
  await ensureTopic(
    engine.cfg.KAFKA_BROKERS,
    stores.KAFKA_TOPIC,
    engine.keys.partitions,
    () => undefined,
  );
  const sku = `lag-${hex()}`;
  await engine.inventory.createSku({ sku, name: sku, stock: 10_000_000, perUserLimit: 100_000 });
  const started: Server[] = [];
  try {
    const env = { LOG_LEVEL: 'info', PORT: '0', ...stores };
    const api = await startServer('dist/src/main.js', env, ['api']);
    started.push(api);
    const relay = await startServer('dist/src/main.js', env, ['relay']);
    started.push(relay);
    const writer = await startServer('dist/src/main.js', env, ['writer']);
    started.push(writer);
    const redisPid = Number(/process_id:(\d+)/.exec(await engine.redis.info('server'))?.[1]);
    const stages: Stage[] = [
      { name: 'api', pids: () => [api.child.pid!] },
      { name: 'redis', pids: () => [redisPid] },
      { name: 'relay', pids: () => [relay.child.pid!] },
      { name: 'kafka', pids: kafkaPids },
      { name: 'writer', pids: () => [writer.child.pid!] },
      { name: 'postgres', pids: postgresPids },
    ];
    const users = Array.from({ length: 2000 }, (_, i) => `lu${i}`);
    const jwts = await tokens(engine.cfg.JWT_SECRET, users);
    const k = engine.keys.forSku(sku);
    const { result, seconds } = await cpuDuring(stages, async () => {
      const result = await steadyPurchases(api.url, sku, opts, (i) => ({
        authorization: `Bearer ${jwts[i % jwts.length]}`,
      }));
      const target = Number(await engine.redis.hget(k.sku, 'seq'));
      const deadline = Date.now() + 60000;
      while (Date.now() < deadline) {
        const row = await engine.db.sku.findUnique({
          where: { id: sku },
          select: { lastSequence: true },
        });
        if ((row?.lastSequence ?? 0) >= target) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      return result;
    });
    const [lag] = await engine.db.$queryRaw<{ p50: number; p99: number; max: number; n: bigint }[]>`
      SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
             max(ms) AS max, count(*) AS n
      FROM (SELECT extract(epoch FROM applied_at - occurred_at) * 1000 AS ms FROM stock_events WHERE sku_id = ${sku}) t`;
    const accepted = result.statusCounts['201'] ?? 0;
    const out: LagResult = {
      purchasesPerS: result.rps,
      events: Number(lag!.n),
      lagP50Ms: Number(lag!.p50),
      lagP99Ms: Number(lag!.p99),
      lagMaxMs: Number(lag!.max),
      statuses: result.statusCounts,
      cpuUsPerPurchase: perPurchase(seconds, accepted),
    };
    process.stderr.write(
      `  lag at ${fmt(result.rps)} purchases/s: p50 ${fmt(out.lagP50Ms)} ms, p99 ${fmt(out.lagP99Ms)} ms, max ${fmt(out.lagMaxMs)} ms; CPU µs per purchase ${JSON.stringify(out.cpuUsPerPurchase)}\n`,
    );
    return out;
  } finally {
    for (const s of started) await s.stop();
    await engine.stop();
    await redis.close();
  }
}

/** One-unit purchases of `sku` at a steady rate over 50 connections, a fresh key each. */
function steadyPurchases(
  url: string,
  sku: string,
  opts: { rate: number; durationS: number },
  buyer: (n: number) => Record<string, string>,
) {
  let n = 0;
  return load({
    url,
    path: `/v1/skus/${sku}/purchases`,
    connections: 50,
    durationS: opts.durationS,
    overallRate: opts.rate,
    next: () => ({
      headers: {
        'content-type': 'application/json',
        'idempotency-key': `${sku}-${n}`,
        ...buyer(n++),
      },
      body: '{"quantity":1}',
    }),
  });
}

/** CPU seconds per stage as microseconds per accepted purchase, with their total. */
function perPurchase(seconds: Record<string, number>, accepted: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [stage, s] of Object.entries(seconds)) {
    out[stage] = accepted ? (s * 1e6) / accepted : 0;
    total += out[stage]!;
  }
  out.total = total;
  return out;
}

/**
 * The PostgreSQL-only baseline at the same steady rate: CPU of its server and of
 * PostgreSQL per accepted purchase.
 */
export async function pgOnlyCpuBench(
  engine: Engine,
  opts: { rate: number; durationS: number },
): Promise<{ purchasesPerS: number; cpuUsPerPurchase: Record<string, number> }> {
  for (const sql of PG_BASELINE_TABLES) await engine.db.$executeRawUnsafe(sql);
  const sku = `pgcpu-${hex()}`;
  await engine.db.$executeRaw`INSERT INTO bench_pg_skus (id, available) VALUES (${sku}, 10000000)`;
  const server = await startServer('dist/bench/pg-baseline-server.js', { PORT: '0' });
  try {
    const { result, seconds } = await cpuDuring(
      [
        { name: 'server', pids: () => [server.child.pid!] },
        { name: 'postgres', pids: postgresPids },
      ],
      () => steadyPurchases(server.url, sku, opts, (i) => ({ 'x-user': `pu${i % 2000}` })),
    );
    const out = {
      purchasesPerS: result.rps,
      cpuUsPerPurchase: perPurchase(seconds, result.statusCounts['201'] ?? 0),
    };
    process.stderr.write(
      `  PostgreSQL only at ${fmt(result.rps)} purchases/s: CPU µs per purchase ${JSON.stringify(out.cpuUsPerPurchase)}\n`,
    );
    return out;
  } finally {
    await server.stop();
  }
}
