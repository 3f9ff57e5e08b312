// What one purchase costs Redis, from Redis's own command statistics, on a redis-server of
// the bench's own (so nothing else moves the figures): microseconds per call of each
// top-level command the purchase path sends (the purchase script, the Idempotency-Key
// claim), the commands the script runs inside, and the round trips per purchase counted at
// the client. Per-SKU capacity is one second over the Redis time per purchase (one SKU
// lives on one Redis node, and Redis runs one command at a time), set against the rate one
// PostgreSQL row takes the same purchase (conditional UPDATE + INSERT) in the same run.
import type { Command } from 'ioredis';
import pg from 'pg';
import { Engine } from '../src/engine.js';
import { loadConfig, type Config } from '../src/shared/config.js';
import { ownRedis } from '../test/support/redis-server.js';
import { uid } from './lib.js';

export interface CommandCost {
  command: string;
  callsPerPurchase: number;
  usPerCall: number;
}

export interface RedisCostResult {
  purchases: number;
  /** Top-level commands only (the script's own commands are inside its time). */
  redisUsPerPurchase: number;
  scriptUsPerCall: number;
  redisRoundTripsPerPurchase: number;
  topLevel: CommandCost[];
  insideScript: CommandCost[];
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
    await pool.query(
      'CREATE TABLE IF NOT EXISTS bench_pg_skus (id text PRIMARY KEY, available int NOT NULL CHECK (available >= 0))',
    );
    await pool.query(
      'CREATE TABLE IF NOT EXISTS bench_pg_orders (id bigserial PRIMARY KEY, sku_id text NOT NULL, user_id text NOT NULL, quantity int NOT NULL, idempotency_key text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
    );
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

export async function redisCostBench(opts: {
  purchases: number;
  pgDurationS: number;
}): Promise<RedisCostResult> {
  const redis = await ownRedis();
  const cfg = loadConfig({ ...process.env, REDIS_URL: redis.url, LOG_LEVEL: 'warn' });
  const engine = new Engine(cfg, 'bench-redis-cost');
  try {
    const sku = uid('cost');
    await engine.inventory.createSku({
      sku,
      name: sku,
      stock: opts.purchases * 2,
      perUserLimit: opts.purchases * 2,
    });
    const buy = async (n: number, prefix: string) => {
      for (let i = 0; i < n; i += 50)
        await Promise.all(
          Array.from({ length: Math.min(50, n - i) }, (_, j) =>
            engine.inventory.purchase(`u${(i + j) % 5000}`, sku, 1, `${prefix}${i + j}`),
          ),
        );
    };
    await buy(2000, 'warm'); // script loaded, connections up, JIT warm

    // Round trips: every command this client sends while the purchases run.
    let sent = 0;
    const client = engine.redis as unknown as { sendCommand: (c: Command) => unknown };
    const send = client.sendCommand.bind(client);
    client.sendCommand = (c: Command) => {
      sent++;
      return send(c);
    };
    await engine.redis.config('RESETSTAT');
    sent = 0;
    await buy(opts.purchases, 'k');
    const stats = commandStats(await engine.redis.info('commandstats'));
    const roundTrips = (sent - 1) / opts.purchases; // less the INFO just sent
    client.sendCommand = send;

    const cost = (command: string): CommandCost => {
      const s = stats.get(command) ?? { calls: 0, usec: 0 };
      return {
        command,
        callsPerPurchase: s.calls / opts.purchases,
        usPerCall: s.calls ? s.usec / s.calls : 0,
      };
    };
    const top = ['evalsha', 'set'].map(cost);
    const inside = [...stats.keys()]
      .filter((c) => !['evalsha', 'set', 'info', 'config|resetstat'].includes(c))
      .map(cost);
    const redisUs = top.reduce((s, c) => s + c.callsPerPurchase * c.usPerCall, 0);
    const pgRate = await pgHotRow(cfg, opts.pgDurationS);
    return {
      purchases: opts.purchases,
      redisUsPerPurchase: redisUs,
      scriptUsPerCall: top[0]!.usPerCall,
      redisRoundTripsPerPurchase: roundTrips,
      topLevel: top,
      insideScript: inside,
      perSkuCapacityPerS: 1e6 / redisUs,
      pgHotRowPerS: pgRate,
      perSkuCapacityVsPg: 1e6 / redisUs / pgRate,
    };
  } finally {
    await engine.stop();
    await redis.close();
  }
}
