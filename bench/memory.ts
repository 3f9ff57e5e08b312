// Redis memory per purchase, on a redis-server of the bench's own (so nothing else moves
// the figure): bytes per accepted order once relayed (order hash, claim, expiry entry,
// holder count), per refused attempt (what a refused request leaves behind), and per
// attempt a rate limit refused (one buyer flooding a SKU with fresh Idempotency-Keys).
import { Engine } from '../src/engine.js';
import { loadConfig } from '../src/shared/config.js';
import { ownRedis } from '../test/support/redis-server.js';
import { uid } from './lib.js';

async function usedMemory(engine: Engine): Promise<number> {
  const info = await engine.redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

export interface MemoryResult {
  orders: number;
  bytesPerOrder: number;
  refusedAttempts: number;
  bytesPerRefusedAttempt: number;
  limitedAttempts: number;
  bytesPerLimitedAttempt: number;
}

export async function memoryBench(opts: {
  orders: number;
  refused: number;
}): Promise<MemoryResult> {
  const redis = await ownRedis();
  const config = (rateLimitPerS: string) =>
    loadConfig({
      ...process.env,
      REDIS_URL: redis.url,
      SOLD_OUT_CACHE_MS: '0',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_BUYER_PER_S: rateLimitPerS,
      RATE_LIMIT_BUYER_BURST: '10',
    });
  // Orders and refusals without a rate limit (its keys, gone within a second of a buyer's
  // last request, would blur the figures); the flood through an engine that limits.
  const engine = new Engine(config('0'), 'bench-memory');
  const limited = new Engine(config('5'), 'bench-memory-limited');
  try {
    const sku = uid('mem');
    await engine.inventory.createSku({ sku, name: sku, stock: opts.orders, perUserLimit: 1 });
    const events = engine.keys.forSku(sku).events;
    const inBatches = async (n: number, fn: (i: number) => Promise<unknown>) => {
      for (let i = 0; i < n; i += 500)
        await Promise.all(
          Array.from({ length: Math.min(500, n - i) }, (_, j) => fn(i + j).catch(() => undefined)),
        );
    };
    const before = await usedMemory(engine);
    await inBatches(opts.orders, (i) => engine.inventory.purchase(`u${i}`, sku, 1, `k${i}`));
    await engine.redis.xtrim(events, 'MAXLEN', 0); // as the relay leaves it
    const afterOrders = await usedMemory(engine);
    // Sold out now: every further attempt is refused by the script.
    await inBatches(opts.refused, (i) => engine.inventory.purchase(`r${i}`, sku, 1, `rk${i}`));
    const afterRefused = await usedMemory(engine);
    // One buyer floods another SKU: its burst buys, every other attempt is limited.
    const flooded = uid('flood');
    await engine.inventory.createSku({
      sku: flooded,
      name: flooded,
      stock: opts.refused,
      perUserLimit: opts.refused,
    });
    let bought = 0;
    await inBatches(opts.refused, (i) =>
      limited.inventory.purchase('flooder', flooded, 1, `f${i}`).then(() => (bought += 1)),
    );
    await engine.redis.xtrim(engine.keys.forSku(flooded).events, 'MAXLEN', 0);
    const afterFlood = await usedMemory(engine);
    const perOrder = (afterOrders - before) / opts.orders;
    return {
      orders: opts.orders,
      bytesPerOrder: Math.round((afterOrders - before) / opts.orders),
      refusedAttempts: opts.refused,
      bytesPerRefusedAttempt: Math.round((afterRefused - afterOrders) / opts.refused),
      limitedAttempts: opts.refused - bought,
      bytesPerLimitedAttempt: Math.round(
        (afterFlood - afterRefused - bought * perOrder) / (opts.refused - bought),
      ),
    };
  } finally {
    await limited.stop();
    await engine.stop();
    await redis.close();
  }
}
