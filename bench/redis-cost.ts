// What one purchase costs Redis, from Redis's own command statistics, on a redis-server of
// the bench's own (so nothing else moves the figures): microseconds per call of each
// top-level command the purchase path sends (the purchase script, the Idempotency-Key
// claim), the commands the script runs inside, and the round trips per purchase counted at
// the client. Per-SKU capacity is one second over the Redis time per purchase (one SKU
// lives on one Redis node, and Redis runs one command at a time), set against the rate one
// PostgreSQL row takes the same purchase (conditional UPDATE + INSERT) in the same run.
import pg from 'pg';
import { Engine } from '../src/engine.js';
import { loadConfig, type Config } from '../src/shared/config.js';
import { commandsSent } from '../test/support/commands.js';
import { ownRedis } from '../test/support/redis-server.js';
import { PG_BASELINE_TABLES, uid } from './lib.js';

export interface CommandCost {
  command: string;
  callsPerPurchase: number;
  usPerCall: number;
}

/** One purchase path's cost: the median over the rounds of each figure. */
export interface PathCost {
  /** Top-level commands only (the script's own commands are inside its time). */
  redisUsPerPurchase: number;
  scriptUsPerCall: number;
  redisRoundTripsPerPurchase: number;
  topLevel: CommandCost[];
  insideScript: CommandCost[];
}

export interface RedisCostResult {
  purchases: number;
  rounds: number;
  /** The engine's path on a single Redis node: the script claims the key (one round trip). */
  singleNode: PathCost;
  /** The path on a Redis Cluster: the claim, then the script (two round trips). */
  cluster: PathCost;
  perSkuCapacityPerS: number;
  pgHotRowPerS: number;
  perSkuCapacityVsPg: number;
}

function commandStats(info: string): Map<string, { calls: number; usec: number }> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/** Purchases per second one PostgreSQL row takes: 50 sessions, each purchase a transaction. */
async function pgHotRow(cfg: Config, durationS: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: cfg.DATABASE_URL, max: 50 });
  const sku = uid('hotrow');
  try {
    for (const sql of PG_BASELINE_TABLES) await pool.query(sql);
    await pool.query('INSERT INTO bench_pg_skus (id, available) VALUES ($1, 100000000)', [sku]);
    let done = 0;
    const until = Date.now() + durationS * 1000;
    await Promise.all(
      Array.from({ length: 50 }, async (_, worker) => {
        const client = await pool.connect();
        try {
          for (let i = 0; Date.now() < until; i++) {
            await client.query('BEGIN');
            await client.query(
              'UPDATE bench_pg_skus SET available = available - 1 WHERE id = $1 AND available >= 1',
              [sku],
            );
            await client.query(
              'INSERT INTO bench_pg_orders (sku_id, user_id, quantity, idempotency_key) VALUES ($1, $2, 1, $3)',
              [sku, `w${worker}`, `${worker}-${i}`],
            );
            await client.query('COMMIT');
            done++;
          }
        } finally {
          client.release();
        }
      }),
    );
    return done / durationS;
  } finally {
    await pool.query('DELETE FROM bench_pg_orders WHERE sku_id = $1', [sku]).catch(() => 0);
    await pool.query('DELETE FROM bench_pg_skus WHERE id = $1', [sku]).catch(() => 0);
    await pool.end();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `purchases` new purchases of one SKU through the engine, 50 at a time, with their cost. */
async function measure(engine: Engine, sku: string, purchases: number): Promise<PathCost> {
  const buy = async (n: number, prefix: string) => {
    for (let i = 0; i < n; i += 50)
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) =>
          engine.inventory.purchase(`u${(i + j) % 5000}`, sku, 1, `${prefix}${i + j}`),
        ),
      );
  };
  await buy(500, uid('warm')); // script loaded, connections up, JIT warm
  // Round trips: every command this client sends while the purchases run, by name (a SET
  // the client sends is the claim's own call; one the script makes is inside it).
  await engine.redis.config('RESETSTAT');
  const sent = await commandsSent(engine.redis, () => buy(purchases, uid('k')));
  const stats = commandStats(await engine.redis.info('commandstats'));
  const cost = (command: string): CommandCost => {
    const s = stats.get(command) ?? { calls: 0, usec: 0 };
    return {
      command,
      callsPerPurchase: s.calls / purchases,
      usPerCall: s.calls ? s.usec / s.calls : 0,
    };
  };
  const topLevel = [...sent.keys()].map(cost);
  return {
    redisUsPerPurchase: topLevel.reduce((s, c) => s + c.callsPerPurchase * c.usPerCall, 0),
    scriptUsPerCall: cost('evalsha').usPerCall,
    redisRoundTripsPerPurchase: [...sent.values()].reduce((a, b) => a + b, 0) / purchases,
    topLevel,
    insideScript: [...stats.keys()]
      .filter((c) => !sent.has(c) && !['info', 'config|resetstat'].includes(c))
      .map(cost),
  };
}

/** The median round of each path (by Redis time per purchase). */
function medianRound(rounds: PathCost[]): PathCost {
  const m = median(rounds.map((r) => r.redisUsPerPurchase));
  return rounds.find((r) => r.redisUsPerPurchase === m)!;
}

/**
 * Both purchase paths on one redis-server, in alternating rounds so a slow spell of the
 * machine weighs on both alike.
 */
export async function redisCostBench(opts: {
  purchases: number;
  rounds: number;
  pgDurationS: number;
}): Promise<RedisCostResult> {
  const redis = await ownRedis();
  const cfg = loadConfig({ ...process.env, REDIS_URL: redis.url, LOG_LEVEL: 'warn' });
  const single = new Engine(cfg, 'bench-redis-cost', { claimInScript: true });
  const cluster = new Engine(cfg, 'bench-redis-cost-2', { claimInScript: false });
  try {
    const sku = uid('cost');
    const stock = (opts.purchases + 500) * opts.rounds * 2;
    await single.inventory.createSku({ sku, name: sku, stock, perUserLimit: stock });
    const rounds: { single: PathCost[]; cluster: PathCost[] } = { single: [], cluster: [] };
    for (let r = 0; r < opts.rounds; r++) {
      rounds.single.push(await measure(single, sku, opts.purchases));
      rounds.cluster.push(await measure(cluster, sku, opts.purchases));
    }
    const singleNode = medianRound(rounds.single);
    const pgRate = await pgHotRow(cfg, opts.pgDurationS);
    return {
      purchases: opts.purchases,
      rounds: opts.rounds,
      singleNode,
      cluster: medianRound(rounds.cluster),
      perSkuCapacityPerS: 1e6 / singleNode.redisUsPerPurchase,
      pgHotRowPerS: pgRate,
      perSkuCapacityVsPg: 1e6 / singleNode.redisUsPerPurchase / pgRate,
    };
  } finally {
    await single.stop();
    await cluster.stop();
    await redis.close();
  }
}
