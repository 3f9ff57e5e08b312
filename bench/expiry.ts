// Expiry at scale, on a redis-server of the bench's own: a backlog of reservations lapses
// at once (the unpaid carts of a big sale), and the sweeper returns their units while
// purchases of another SKU go on beside it. Reports expirations per second and the
// purchases' latency during the sweep.
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine } from '../src/engine.js';
import { Sweeper } from '../src/inventory/sweeper.js';
import { loadConfig } from '../src/shared/config.js';
import { ownRedis } from '../test/support/redis-server.js';
import { uid } from './lib.js';

export interface ExpiryResult {
  reservations: number;
  skus: number;
  sweepSeconds: number;
  expirationsPerSecond: number;
  /** Purchases of another SKU decided while the sweep ran, and their latency. */
  purchasesBeside: number;
  purchaseP50Ms: number;
  purchaseP99Ms: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function expiryBench(opts: {
  reservations: number;
  skus: number;
}): Promise<ExpiryResult> {
  const redis = await ownRedis();
  const cfg = loadConfig({ ...process.env, REDIS_URL: redis.url, LOG_LEVEL: 'warn' });
  const engine = new Engine(cfg, 'bench-expiry');
  try {
    const perSku = Math.ceil(opts.reservations / opts.skus);
    const skus = Array.from({ length: opts.skus }, () => uid('exp'));
    for (const sku of skus)
      await engine.inventory.createSku({
        sku,
        name: sku,
        stock: perSku,
        perUserLimit: perSku,
        reservationTtlSeconds: 1,
      });
    const hot = uid('beside');
    await engine.inventory.createSku({ sku: hot, name: hot, stock: 1_000_000, perUserLimit: 1e6 });

    // The backlog: every reservation made within a few seconds, all due together.
    let made = 0;
    for (let i = 0; i < opts.reservations; i += 1000)
      await Promise.all(
        Array.from({ length: Math.min(1000, opts.reservations - i) }, (_, j) => {
          const n = i + j;
          return engine.inventory
            .purchase(`u${n % 5000}`, skus[n % skus.length]!, 1, `k${n}`)
            .then(() => made++);
        }),
      );
    await sleep(1500);

    const sweeper = new Sweeper(
      engine.redis,
      engine.inventory,
      undefined,
      {
        intervalMs: cfg.SWEEP_INTERVAL_MS,
        batchSize: cfg.SWEEP_BATCH_SIZE,
        parallel: cfg.SWEEP_PARALLEL,
      },
      engine.log,
    );
    const latencies: number[] = [];
    let sweeping = true;
    const beside = (async () => {
      for (let i = 0; sweeping; i++) {
        const t = performance.now();
        await engine.inventory.purchase(`b${i % 1000}`, hot, 1, `b${i}`);
        latencies.push(performance.now() - t);
        await sleep(1);
      }
    })();
    const started = performance.now();
    let expired = 0;
    // As the running sweeper does: one pass per interval until nothing is due.
    for (;;) {
      const n = await sweeper.sweepOnce();
      expired += n;
      if (expired >= made || n === 0) break;
      await sleep(cfg.SWEEP_INTERVAL_MS);
    }
    const sweepSeconds = (performance.now() - started) / 1000;
    sweeping = false;
    await beside;
    latencies.sort((a, b) => a - b);
    return {
      reservations: made,
      skus: opts.skus,
      sweepSeconds,
      expirationsPerSecond: expired / sweepSeconds,
      purchasesBeside: latencies.length,
      purchaseP50Ms: percentile(latencies, 50),
      purchaseP99Ms: percentile(latencies, 99),
    };
  } finally {
    await engine.stop();
    await redis.close();
  }
}
