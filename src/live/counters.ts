// Sale counters across every API process. The purchase path counts in memory (prom-client,
// per process); here each API process copies its per-SKU counters to Redis about once a
// second, off the purchase path, and the live view sums what the live processes published.
//
// Per process, a hash `fs:live:counters:<instance>` with a TTL of a few seconds:
//   at                 when it was published (ms, the publisher's clock)
//   u:<sku>            units reserved by new purchases since the process started
//   r:<sku>            units reserved per second over the last publish interval
//   o:<sku>:<outcome>  purchases by outcome (created, replayed, or the refusal's error code)
// and a zset of instances (score: last publish) so a reader finds the hashes without SCAN.
// A process that stops publishing drops out when its hash expires; its counts go with it.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../clients/redis.js';
import type { KeySpace } from '../shared/keys.js';
import type { Logger } from '../shared/log.js';
import { purchases, unitsReserved } from '../shared/metrics.js';
import { PeriodicTask } from '../shared/periodic.js';

export const PUBLISH_INTERVAL_MS = 1000;
/** Long enough to ride out a couple of late publishes (a busy event loop, a GC pause). */
export const COUNTERS_TTL_MS = 5000;
/** Index entries older than this are pruned (their hashes expired long before). */
const INDEX_RETENTION_MS = 60_000;
/** Most instances a reader sums: far above any deployment, a bound on a corrupted index. */
const MAX_INSTANCES = 1000;

/**
 * This process as a publisher. The counters are per process (one prom-client registry), so
 * the id is too: two engines in one process (tests) write the same hash, never twice the sum.
 */
export const PROCESS_INSTANCE_ID = `${hostname()
  .replace(/[^A-Za-z0-9_-]/g, '_')
  .slice(0, 40)}-${process.pid}-${randomBytes(4).toString('hex')}`;

export interface SkuCounters {
  unitsReserved: number;
  /** Purchases by outcome: created, replayed, or an error code. */
  outcomes: Record<string, number>;
}

export interface CounterSample {
  atMs: number;
  skus: Map<string, SkuCounters>;
}

const CREATED_OR_REPLAYED = new Set(['created', 'replayed']);

/** This process's per-SKU counters (purchases refused before their SKU was known carry none). */
export async function readProcessCounters(atMs = Date.now()): Promise<CounterSample> {
  const [bought, units] = await Promise.all([purchases.get(), unitsReserved.get()]);
  const skus = new Map<string, SkuCounters>();
  const entry = (sku: string) => {
    let e = skus.get(sku);
    if (!e) skus.set(sku, (e = { unitsReserved: 0, outcomes: {} }));
    return e;
  };
  for (const v of bought.values) {
    const sku = String(v.labels.sku ?? '');
    const outcome = String(v.labels.outcome ?? '');
    if (sku && outcome) entry(sku).outcomes[outcome] = v.value;
  }
  for (const v of units.values) {
    const sku = String(v.labels.sku ?? '');
    if (sku) entry(sku).unitsReserved = v.value;
  }
  return { atMs, skus };
}

/** The hash fields of one publish; the rate is taken against the previous sample. */
export function publishFields(now: CounterSample, prev: CounterSample): Record<string, string> {
  const fields: Record<string, string> = { at: String(now.atMs) };
  const seconds = (now.atMs - prev.atMs) / 1000;
  for (const [sku, c] of now.skus) {
    fields[`u:${sku}`] = String(c.unitsReserved);
    const before = prev.skus.get(sku)?.unitsReserved ?? 0;
    const rate = seconds > 0 ? Math.max(0, c.unitsReserved - before) / seconds : 0;
    fields[`r:${sku}`] = String(Math.round(rate * 1000) / 1000);
    for (const [outcome, n] of Object.entries(c.outcomes))
      fields[`o:${sku}:${outcome}`] = String(n);
  }
  return fields;
}

export interface SummedSku {
  unitsReserved: number;
  soldPerSecond: number;
  refusals: Record<string, number>;
}

/** Sums the published hashes of the live instances, per SKU. */
export function sumPublished(hashes: readonly Record<string, string>[]): Map<string, SummedSku> {
  const out = new Map<string, SummedSku>();
  const entry = (sku: string) => {
    let e = out.get(sku);
    if (!e) out.set(sku, (e = { unitsReserved: 0, soldPerSecond: 0, refusals: {} }));
    return e;
  };
  for (const hash of hashes) {
    for (const [field, raw] of Object.entries(hash)) {
      const value = Number(raw);
      if (!Number.isFinite(value)) continue;
      const [kind, sku, outcome] = field.split(':');
      if (!sku) continue;
      if (kind === 'u') entry(sku).unitsReserved += value;
      else if (kind === 'r') entry(sku).soldPerSecond += value;
      else if (kind === 'o' && outcome && !CREATED_OR_REPLAYED.has(outcome)) {
        const refusals = entry(sku).refusals;
        refusals[outcome] = (refusals[outcome] ?? 0) + value;
      }
    }
  }
  for (const e of out.values()) e.soldPerSecond = Math.round(e.soldPerSecond * 100) / 100;
  return out;
}

/** Sums the counters of every API process that published within the last few seconds. */
export async function readPublishedCounters(
  redis: RedisClient,
  keys: KeySpace,
): Promise<Map<string, SummedSku>> {
  const ids = await redis.zrangebyscore(
    keys.liveInstances(),
    Date.now() - INDEX_RETENTION_MS,
    '+inf',
    'LIMIT',
    0,
    MAX_INSTANCES,
  );
  // One round trip (auto-pipelining); an expired hash reads as {} and adds nothing.
  const hashes = await Promise.all(ids.map((id) => redis.hgetall(keys.liveCounters(id))));
  return sumPublished(hashes);
}

/** Copies this process's counters to Redis every PUBLISH_INTERVAL_MS (API processes). */
export class CounterPublisher {
  private prev: CounterSample = { atMs: Date.now(), skus: new Map() };
  private readonly task = new PeriodicTask(
    () => this.publish(),
    () => PUBLISH_INTERVAL_MS,
    (err) => this.log.debug({ err }, 'live counters not published; next second'),
  );

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    private readonly log: Logger,
    private readonly instanceId = PROCESS_INSTANCE_ID,
  ) {}

  private firstPublish: NodeJS.Timeout | undefined;
  private stopped = false;

  /** The first publish comes a second from now, with a rate measured from now on. */
  async start(): Promise<void> {
    this.prev = await readProcessCounters();
    // A stop within that second must keep the task from starting after it.
    if (this.stopped) return;
    this.firstPublish = setTimeout(() => this.task.start(), PUBLISH_INTERVAL_MS);
    this.firstPublish.unref();
  }

  async publish(): Promise<void> {
    const now = await readProcessCounters();
    const key = this.keys.liveCounters(this.instanceId);
    const index = this.keys.liveInstances();
    // One round trip (auto-pipelining). Counters only grow, so fields are never removed.
    await Promise.all([
      this.redis.hset(key, publishFields(now, this.prev)),
      this.redis.pexpire(key, COUNTERS_TTL_MS),
      this.redis.zadd(index, now.atMs, this.instanceId),
      this.redis.zremrangebyscore(index, '-inf', now.atMs - INDEX_RETENTION_MS),
    ]);
    this.prev = now;
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.firstPublish);
    return this.task.stop();
  }
}
