// Redis vs PostgreSQL for one or many SKUs: stock, supply and sequence on both sides, and
// PostgreSQL's own conservation (available + units held by live orders == supplied).
import type { Db } from '../clients/db.js';
import type { KeySpace } from '../shared/keys.js';
import type { RedisClient } from '../clients/redis.js';

export interface SkuComparison {
  sku: string;
  redis: { available: number; supplied: number; sequence: number } | null;
  db: { available: number; supplied: number; sequence: number; heldByLiveOrders: number };
  /** Events Redis has that PostgreSQL has not applied yet (negative: PostgreSQL is ahead). */
  lag: number | null;
  /** At equal sequences, Redis available minus PostgreSQL available; null otherwise. */
  drift: number | null;
  /** PostgreSQL: available + held by live orders - supplied (0 when conserved). */
  conservationGap: number;
}

/** One comparison per SKU PostgreSQL knows, in the order of `skuIds`. */
export async function compareSkus(
  redis: RedisClient,
  db: Db,
  keys: KeySpace,
  skuIds: string[],
): Promise<SkuComparison[]> {
  if (skuIds.length === 0) return [];
  const rows = await db.$queryRaw<
    {
      id: string;
      available: number;
      total_supplied: number;
      last_sequence: number;
      held: bigint | null;
    }[]
  >`
    SELECT s.id, s.available, s.total_supplied, s.last_sequence,
           (SELECT sum(o.quantity) FROM orders o WHERE o.sku_id = s.id AND o.status IN ('reserved', 'confirmed')) AS held
    FROM skus s WHERE s.id = ANY(${skuIds}::text[])
    ORDER BY array_position(${skuIds}::text[], s.id)`;
  const redisRows = await Promise.all(
    rows.map((r) => redis.hmget(keys.forSku(r.id).sku, 'available', 'supplied', 'seq')),
  );
  return rows.map((r, i) => {
    const [a, s, q] = redisRows[i]!;
    const red =
      a === null || a === undefined
        ? null
        : { available: Number(a), supplied: Number(s), sequence: Number(q) };
    const held = Number(r.held ?? 0);
    return {
      sku: r.id,
      redis: red,
      db: {
        available: r.available,
        supplied: r.total_supplied,
        sequence: r.last_sequence,
        heldByLiveOrders: held,
      },
      lag: red ? red.sequence - r.last_sequence : null,
      drift: red && red.sequence === r.last_sequence ? red.available - r.available : null,
      conservationGap: r.available + held - r.total_supplied,
    };
  });
}
