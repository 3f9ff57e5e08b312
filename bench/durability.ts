// What each durability promise costs: purchase throughput with Redis AOF `appendfsync
// always` vs `everysec` vs no persistence, side by side in one run. Three redis-servers of
// the bench's own (never the shared one), each with the engine's API and its relay and
// writer in processes of their own; the API runs take turns, round after round, so a
// noisy moment of the machine weighs on every setting alike. Also the purchase script
// called through the Inventory in this process (no HTTP), where Redis weighs more.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/shared/config.js';
import { Engine } from '../src/engine.js';
import type { Durability } from '../src/clients/redis-durability.js';
import { compareSkus } from '../src/reconcile/compare.js';
import { startOwnRedis, type OwnRedis } from '../test/support/redis-server.js';
import { fmt, load, startServer, tokens, type LoadResult, type Server } from './lib.js';

const mainJs = fileURLToPath(new URL('../src/main.js', import.meta.url));

const SETTINGS: { promise: Durability; redisArgs: string[]; label: string }[] = [
  {
    promise: 'always',
    redisArgs: ['--appendonly', 'yes', '--appendfsync', 'always'],
    label: 'AOF, appendfsync always',
  },
  {
    promise: 'everysec',
    redisArgs: ['--appendonly', 'yes', '--appendfsync', 'everysec'],
    label: 'AOF, appendfsync everysec',
  },
  { promise: 'none', redisArgs: ['--appendonly', 'no'], label: 'no persistence' },
];

export interface DurabilityResult {
  promise: Durability;
  redis: string;
  /** API purchase runs, one per round. */
  api: LoadResult[];
  apiRps: number;
  /** Purchases per second through the Inventory in this process. */
  directRps: number;
  converged: boolean;
}

/** `concurrency` loops of inventory.purchase for `durationS` seconds. */
async function direct(engine: Engine, sku: string, concurrency: number, durationS: number) {
  const until = Date.now() + durationS * 1000;
  let done = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      for (let i = 0; Date.now() < until; i++) {
        await engine.inventory.purchase(`dd${(c * 7919 + i) % 5000}`, sku, 1, `${sku}-d${c}-${i}`);
        done += 1;
      }
    }),
  );
  return done / ((Date.now() - started) / 1000);
}

export async function durabilityBench(
  engine: Engine,
  opts: { durationS: number; connections: number; rounds: number },
): Promise<DurabilityResult[]> {
  const users = Array.from({ length: 5000 }, (_, i) => `du${i}`);
  const jwts = await tokens(engine.cfg.JWT_SECRET, users);
  interface Setup {
    s: (typeof SETTINGS)[number];
    redis: OwnRedis;
    local: Engine;
    api?: Server;
    pipeline?: Server;
    sku: string;
    n: number;
    runs: LoadResult[];
  }
  const setups: Setup[] = [];
  try {
    for (const s of SETTINGS) {
      const redis = await startOwnRedis(s.redisArgs);
      const env = {
        PORT: '0',
        LOG_LEVEL: 'info',
        REDIS_URL: redis.url,
        REDIS_DURABILITY: s.promise,
      };
      const local = new Engine(loadConfig({ ...process.env, ...env, LOG_LEVEL: 'warn' }), 'bench');
      const setup: Setup = {
        s,
        redis,
        local,
        sku: `dur-${s.promise}-${randomBytes(3).toString('hex')}`,
        n: 0,
        runs: [],
      };
      setups.push(setup);
      await local.inventory.createSku({
        sku: setup.sku,
        name: setup.sku,
        stock: 10_000_000,
        perUserLimit: 100_000,
      });
      setup.pipeline = await startServer(mainJs, env, ['relay', 'writer']);
      setup.api = await startServer(mainJs, env, ['api']);
    }
    const next = (x: Setup) => () => {
      const u = x.n++ % users.length;
      return {
        headers: {
          'content-type': 'application/json',
          'idempotency-key': `${x.sku}-${x.n}`,
          authorization: `Bearer ${jwts[u]}`,
        },
        body: '{"quantity":1}',
      };
    };
    const run = (x: Setup, durationS: number) =>
      load({
        url: x.api!.url,
        path: `/v1/skus/${x.sku}/purchases`,
        connections: opts.connections,
        durationS,
        next: next(x),
      });
    for (const x of setups) await run(x, 2); // warm-up: JIT, pools, the token cache
    for (let round = 0; round < opts.rounds; round++) {
      for (const x of setups) {
        const r = await run(x, opts.durationS);
        x.runs.push(r);
        process.stderr.write(
          `  round ${round + 1}, ${x.s.label}: ${fmt(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms ${JSON.stringify(r.statusCounts)}\n`,
        );
      }
    }
    const results: DurabilityResult[] = [];
    for (const x of setups) {
      const directRps = await direct(x.local, x.sku, opts.connections, Math.min(opts.durationS, 3));
      process.stderr.write(`  inventory call, ${x.s.label}: ${fmt(directRps)} purchases/s\n`);
      // The pipeline drains every setting's purchases into PostgreSQL: the stores agree.
      const deadline = Date.now() + 120_000;
      let converged = false;
      while (!converged && Date.now() < deadline) {
        const [c] = await compareSkus(x.local.redis, x.local.db, x.local.keys, [x.sku]);
        converged = c?.lag === 0 && c.drift === 0 && c.conservationGap === 0;
        if (!converged) await new Promise((r) => setTimeout(r, 250));
      }
      results.push({
        promise: x.s.promise,
        redis: x.s.label,
        api: x.runs,
        apiRps: x.runs.reduce((s, r) => s + r.rps, 0) / x.runs.length,
        directRps,
        converged,
      });
    }
    return results;
  } finally {
    for (const x of setups.reverse()) {
      await x.api?.stop().catch(() => undefined);
      await x.pipeline?.stop().catch(() => undefined);
      await x.local.stop().catch(() => undefined);
      await x.redis.close();
    }
  }
}

export function durabilityTable(results: DurabilityResult[]): string {
  const none = results.find((r) => r.promise === 'none')!;
  const rows = results.map(
    (r) =>
      `| ${r.promise} | ${r.redis} | ${r.api.map((x) => fmt(x.rps)).join(' / ')} | ${fmt(r.apiRps / none.apiRps, 2)} | ${r.api.map((x) => x.p99).join(' / ')} | ${fmt(r.directRps)} | ${fmt(r.directRps / none.directRps, 2)} | ${r.converged ? 'yes' : 'NO'} |`,
  );
  return [
    '| REDIS_DURABILITY | Redis | API req/s per round | API ratio to none | API p99 ms per round | inventory call purchases/s | ratio to none | stores agree after drain |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
