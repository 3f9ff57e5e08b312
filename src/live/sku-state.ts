// A SKU's live state in Redis (stock, supply, pause, sale window) and the reservations
// about to expire, read for many SKUs in one round trip (auto-pipelining).
import type { RedisClient } from '../clients/redis.js';
import type { KeySpace } from '../shared/keys.js';

export const EXPIRING_WINDOW_MS = 60_000;
/**
 * Expiry index entries read per partition to split its due reservations by SKU. The index
 * is per partition (`<sku>:<orderId>` members), so a per-SKU count is a bounded scan.
 */
export const EXPIRING_SCAN_LIMIT = 1000;

export interface SkuState {
  available: number | null;
  supplied: number | null;
  paused: boolean | null;
  startsAt: string | null;
  endsAt: string | null;
}

const UNKNOWN: SkuState = {
  available: null,
  supplied: null,
  paused: null,
  startsAt: null,
  endsAt: null,
};

const int = (v: string | null | undefined) => (v === null || v === undefined ? null : Number(v));
/** The scripts store a sale window bound as ms since the epoch, 0 for none. */
const instant = (v: string | null | undefined) =>
  v && Number(v) > 0 ? new Date(Number(v)).toISOString() : null;

/** Each SKU's Redis state; all null for a SKU whose state is missing (Redis lost it). */
export async function readSkuStates(
  redis: RedisClient,
  keys: KeySpace,
  skus: readonly string[],
): Promise<Map<string, SkuState>> {
  const replies = await Promise.all(
    skus.map((sku) =>
      redis.hmget(keys.forSku(sku).sku, 'available', 'supplied', 'paused', 'startsAt', 'endsAt'),
    ),
  );
  return new Map(
    skus.map((sku, i) => {
      const [available, supplied, paused, startsAt, endsAt] = replies[i]!;
      if (available === null || available === undefined) return [sku, UNKNOWN];
      return [
        sku,
        {
          available: int(available),
          supplied: int(supplied),
          paused: paused === '1',
          startsAt: instant(startsAt),
          endsAt: instant(endsAt),
        },
      ];
    }),
  );
}

/**
 * Splits one partition's due reservations among its SKUs: exact when the partition has at
 * most `sample.length` due; beyond that each SKU gets its share of the sample times the
 * exact total (still exact when one SKU has the partition to itself).
 */
export function splitDue(
  total: number,
  sample: readonly string[],
  skus: readonly string[],
): Map<string, number> {
  const inSample = new Map<string, number>(skus.map((s) => [s, 0]));
  for (const member of sample) {
    const sku = member.slice(0, member.indexOf(':'));
    const n = inSample.get(sku);
    if (n !== undefined) inSample.set(sku, n + 1);
  }
  if (sample.length === 0 || sample.length >= total) return inSample;
  return new Map([...inSample].map(([sku, n]) => [sku, Math.round((n / sample.length) * total)]));
}

/**
 * Reservations due within the next minute per SKU (or due already and not swept yet): one
 * ZCOUNT and one bounded ZRANGEBYSCORE per partition the SKUs live in.
 */
export async function countExpiring(
  redis: RedisClient,
  keys: KeySpace,
  skus: readonly string[],
  nowMs = Date.now(),
): Promise<Map<string, number>> {
  const byPartition = new Map<number, string[]>();
  for (const sku of skus) {
    const p = keys.partitionOf(sku);
    byPartition.set(p, [...(byPartition.get(p) ?? []), sku]);
  }
  const until = nowMs + EXPIRING_WINDOW_MS;
  const partitions = [...byPartition.keys()];
  const reads = await Promise.all(
    partitions.map((p) =>
      Promise.all([
        redis.zcount(keys.expiries(p), '-inf', until),
        redis.zrangebyscore(keys.expiries(p), '-inf', until, 'LIMIT', 0, EXPIRING_SCAN_LIMIT),
      ]),
    ),
  );
  const out = new Map<string, number>();
  partitions.forEach((p, i) => {
    const [total, sample] = reads[i]!;
    for (const [sku, n] of splitDue(total, sample, byPartition.get(p)!)) out.set(sku, n);
  });
  return out;
}
