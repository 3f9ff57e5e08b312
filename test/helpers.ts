// Shared test plumbing: a config for the local services, unique ids, tokens, an engine
// on an ephemeral port, and snapshots of a SKU's Redis keys.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { SignJWT } from 'jose';
import { loadConfig, type Config } from '../src/shared/config.js';
import { Engine } from '../src/engine.js';
import { xinfoFields } from '../src/pipeline/drain.js';
import { parseOrder } from '../src/shared/keys.js';

type EngineChoices = ConstructorParameters<typeof Engine>[2];
import type { RedisClient } from '../src/clients/redis.js';

// Tests run on the published development secrets, which only development and test accept;
// processes the tests spawn inherit this.
process.env.NODE_ENV ??= 'test';

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    ...process.env,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    ...overrides,
  });
}

export const uid = (prefix = 't') => `${prefix}-${randomBytes(6).toString('hex')}`;

/** A fresh SKU id that lands in the given inventory partition (a neighbour of another). */
export function skuInPartition(
  keys: { partitionOf(sku: string): number },
  partition: number,
  prefix: string,
): string {
  for (;;) {
    const id = uid(prefix);
    if (keys.partitionOf(id) === partition) return id;
  }
}

export async function token(
  userId: string,
  opts: { secret?: string; expiresIn?: string | number; alg?: 'HS256' | 'HS384' } = {},
): Promise<string> {
  const secret = opts.secret ?? testConfig().JWT_SECRET;
  return new SignJWT({})
    .setProtectedHeader({ alg: opts.alg ?? 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '1h')
    .sign(new TextEncoder().encode(secret));
}

/** `n` buyers, `<prefix>-0` and up, each with a token. */
export async function buyers(prefix: string, n: number): Promise<{ id: string; jwt: string }[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const id = `${prefix}-${i}`;
      return { id, jwt: await token(id) };
    }),
  );
}

export interface RunningApi {
  engine: Engine;
  url: string;
  admin: Record<string, string>;
  stop(): Promise<void>;
}

function running(engine: Engine): RunningApi {
  const a = engine.address;
  return {
    engine,
    url: a ? `http://127.0.0.1:${a.port}` : '',
    admin: {
      authorization: `Bearer ${engine.cfg.ADMIN_TOKEN}`,
      'content-type': 'application/json',
    },
    stop: () => engine.stop(),
  };
}

/** inventory: the engine's own choices a test pins, e.g. the two-call purchase path. */
export async function startApi(
  overrides: Record<string, string> = {},
  inventory: EngineChoices = {},
): Promise<RunningApi> {
  const engine = new Engine(testConfig(overrides), 'test', inventory);
  await engine.startApi();
  return running(engine);
}

export async function createSku(
  api: RunningApi,
  body: { sku: string; stock: number; perUserLimit: number; [k: string]: unknown },
): Promise<void> {
  const res = await fetch(`${api.url}/v1/admin/skus`, {
    method: 'POST',
    headers: api.admin,
    body: JSON.stringify({ name: body.sku, ...body }),
  });
  if (res.status !== 201) throw new Error(`create ${body.sku}: ${res.status} ${await res.text()}`);
}

/** headers: more request headers (passes, X-Forwarded-For). */
export async function buy(
  api: RunningApi,
  sku: string,
  jwt: string,
  key: string,
  quantity = 1,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; replayed: boolean; retryAfter: string | null }> {
  const res = await fetch(`${api.url}/v1/skus/${sku}/purchases`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${jwt}`,
      'idempotency-key': key,
      'content-type': 'application/json',
      ...headers,
    },
    body: JSON.stringify({ quantity }),
  });
  return {
    status: res.status,
    body: await res.json(),
    replayed: res.headers.get('idempotent-replayed') === 'true',
    retryAfter: res.headers.get('retry-after'),
  };
}

export async function post(
  api: RunningApi,
  path: string,
  jwt: string,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}` },
  });
  return { status: res.status, body: await res.json() };
}

/** SCAN over every master (a single node, or each master of a cluster). */
export async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const out: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 2000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out;
}

/** Every Redis key whose name matches, with its DUMP: equal snapshots mean byte-for-byte equal. */
export async function snapshot(
  redis: RedisClient,
  patterns: string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const pattern of patterns) {
    for (const k of await scanKeys(redis, pattern)) {
      const dump = await redis.dumpBuffer(k);
      out.set(k, dump ? dump.toString('base64') : '');
    }
  }
  return out;
}

/** A SKU's Redis state: its hash, and the units each user holds. */
export async function redisState(engine: Engine, sku: string) {
  const k = engine.keys.forSku(sku);
  const h = await engine.redis.hgetall(k.sku);
  const users = await engine.redis.hgetall(k.users);
  return {
    available: Number(h.available),
    supplied: Number(h.supplied),
    seq: Number(h.seq),
    users: Object.fromEntries(Object.entries(users).map(([u, n]) => [u, Number(n)])),
  };
}

/** Waits until PostgreSQL has applied every event Redis has for these SKUs. */
export async function waitForDrain(engine: Engine, skus: string[], timeoutMs = 60000) {
  const { compareSkus } = await import('../src/reconcile/compare.js');
  const deadline = Date.now() + timeoutMs;
  let last: Awaited<ReturnType<typeof compareSkus>> = [];
  while (Date.now() < deadline) {
    last = await compareSkus(engine.redis, engine.db, engine.keys, skus);
    if (last.length === skus.length && last.every((c) => c.lag === 0)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  const lagging = last.filter((c) => c.lag !== 0).slice(0, 3);
  const where = await pipelineReport(engine, [
    ...new Set(lagging.map((c) => engine.keys.partitionOf(c.sku))),
  ]).catch((err: unknown) => `(no report: ${String(err)})`);
  throw new Error(`pipeline did not drain: ${JSON.stringify(lagging)}\n${where}`);
}

/**
 * Where a partition's events stand, stage by stage, for a failure message: the Redis
 * stream (entries, the relay group's delivered and pending ones, its consumers), the
 * relay lease, and the DB writer's lag on the Kafka partition.
 */
export async function pipelineReport(engine: Engine, partitions: number[]): Promise<string> {
  const kafka = await engine.kafkaLag().catch((err: unknown) => String(err));
  const lines: string[] = [];
  for (const p of partitions) {
    const stream = engine.keys.events(p);
    const newest = await engine.redis.xrevrange(stream, '+', '-', 'COUNT', 1);
    const groups = ((await engine.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[]).map(
      xinfoFields,
    );
    const consumers = await engine.redis
      .xinfo('CONSUMERS', stream, 'relay')
      .then((cs) => (cs as unknown[]).map(xinfoFields))
      .catch((err: unknown) => String(err));
    const lease = await engine.redis.pttl(engine.keys.lock(p, 'relay'));
    lines.push(
      `partition ${p}: stream length ${await engine.redis.xlen(stream)}, newest ${newest[0]?.[0] ?? 'none'}; ` +
        `groups ${JSON.stringify(groups)}; relay consumers ${JSON.stringify(consumers)}; ` +
        `relay lease ttl ${lease} ms; Kafka lag ${typeof kafka === 'string' ? kafka : kafka.get(p)}`,
    );
  }
  return lines.join('\n');
}

/** Polls `fn` until it gives a value (not undefined), or fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  pollMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Drains, then for each SKU both stores hold the same stock, supply and sequence, and
 * PostgreSQL conserves units (available + held == supplied). Returns the comparisons, for
 * the checks a drill adds.
 */
export async function assertStoresAgree(engine: Engine, skus: string[], timeoutMs = 60000) {
  const compared = await waitForDrain(engine, skus, timeoutMs);
  for (const c of compared) {
    assert.deepEqual(
      { available: c.db.available, supplied: c.db.supplied, sequence: c.db.sequence },
      c.redis,
      `${c.sku}: Redis and PostgreSQL agree`,
    );
    assert.equal(c.conservationGap, 0, `${c.sku}: conservation in PostgreSQL`);
  }
  return compared;
}

/** Every order Redis holds for a SKU, with its status. */
export async function redisOrders(engine: Engine, sku: string): Promise<Map<string, string>> {
  const k = engine.keys.forSku(sku);
  const out = new Map<string, string>();
  const keys = await scanKeys(engine.redis, k.order('*'));
  // Either layout: an order string, or an older engine's hash (order-layout.test.ts).
  const values = await Promise.all(
    keys.map((key) =>
      engine.redis.get(key).catch(async (err: unknown) => {
        if (!String(err).includes('WRONGTYPE')) throw err;
        return engine.redis.hgetall(key);
      }),
    ),
  );
  keys.forEach((key, i) => {
    if (values[i] === null) return; // ended since the scan
    const order = parseOrder(values[i]!);
    assert.ok(order, `${key} is a malformed order`);
    if (order.sku === sku) out.set(key.slice(key.lastIndexOf(':') + 1), order.status);
  });
  return out;
}

export async function startEngine(
  roles: import('../src/engine.js').Role[],
  overrides: Record<string, string> = {},
  inventory: EngineChoices = {},
): Promise<RunningApi> {
  const engine = new Engine(testConfig(overrides), 'test', inventory);
  await engine.start(roles);
  return running(engine);
}

/**
 * The end of every drill: for these SKUs both stores hold the same orders, PostgreSQL
 * applied each event exactly once (sequences 1..n, none twice), and nothing was parked.
 */
export async function assertPipelineExact(
  engine: Engine,
  skus: string[],
  dbOrders: { id: string; skuId: string }[],
): Promise<void> {
  for (const sku of skus) {
    const inRedis = await redisOrders(engine, sku);
    assert.deepEqual(
      new Set(dbOrders.filter((o) => o.skuId === sku).map((o) => o.id)),
      new Set(inRedis.keys()),
      `${sku}: same orders in both stores`,
    );
  }
  const events = await engine.db.stockEvent.groupBy({
    by: ['skuId'],
    where: { skuId: { in: skus } },
    _count: true,
    _max: { sequence: true },
  });
  for (const e of events)
    assert.equal(e._count, e._max.sequence, `${e.skuId}: every event applied once`);
  assert.equal(
    await engine.db.pipelineAnomaly.count({ where: { skuId: { in: skus } } }),
    0,
    'no gap or conflict',
  );
}
