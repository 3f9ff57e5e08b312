// Copies of the durable record into Redis: a SKU's state loaded at creation, rebuilt after
// Redis lost it (never treated as zero or fresh stock: 503 until rebuilt, under a lock, once
// the pipeline has brought PostgreSQL up to date), and replaced by an operator's repair.
import { randomUUID } from 'node:crypto';
import { InventoryPart, type InventoryContext } from './types.js';
import { Prisma } from '../clients/db.js';
import { AppError } from '../shared/errors.js';
import { claimValue, orderValue } from '../shared/keys.js';
import { ScriptCode, skuUnavailable } from './script-codes.js';
import { admissionFromRow, admissionHashFields } from './admission-fields.js';

const UNKNOWN_SKU_CACHE_MS = 1000;

export class Rebuilder extends InventoryPart {
  private readonly rebuilding = new Set<string>();
  private readonly background = new Set<Promise<unknown>>();
  private closed = false;
  /**
   * SKU id -> until when PostgreSQL is taken not to know it, and the catalog epoch it was
   * seen under: a SKU created since (on any instance) changed the epoch.
   */
  private readonly unknownSkus = new Map<string, { until: number; epoch: string }>();

  constructor(
    ctx: InventoryContext,
    /** Pauses or resumes a SKU's sales (the repair brackets its reload with them). */
    private readonly pause: (skuId: string, paused: boolean) => Promise<boolean>,
  ) {
    super(ctx);
  }

  /**
   * Copies a SKU's state from PostgreSQL into Redis: the SKU, the units each user holds
   * and the reservations, read in one snapshot. Fresh (no state present, else refused) or,
   * for repair, replacing a paused state whose sequence is still `expectedSequence`.
   * Returns whether it loaded.
   */
  async loadFromDb(skuId: string, replace?: { expectedSequence: number }): Promise<boolean> {
    const k = this.keys.forSku(skuId);
    const { sku, holders, reservations } = await this.db.$transaction(
      async (tx) => {
        const sku = await tx.sku.findUnique({ where: { id: skuId } });
        const holders = await tx.$queryRaw<{ user_id: string; held: number }[]>`
          SELECT user_id, sum(quantity)::int AS held FROM orders
          WHERE sku_id = ${skuId} AND status IN ('reserved', 'confirmed') GROUP BY user_id`;
        const reservations = await tx.order.findMany({
          where: { skuId, status: 'reserved' },
          orderBy: { createdAt: 'asc' },
        });
        return { sku, holders, reservations };
      },
      { isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead },
    );
    if (!sku) throw new AppError('SKU_NOT_FOUND');
    const keys = [
      k.sku,
      k.users,
      k.expiries,
      k.restoredClaims,
      ...reservations.map((o) => k.order(o.id)),
    ];
    const args: (string | number)[] = [
      skuId,
      sku.available,
      sku.totalSupplied,
      sku.perUserLimit,
      sku.startsAt?.getTime() ?? 0,
      sku.endsAt?.getTime() ?? 0,
      sku.reservationTtlSeconds,
      sku.paused ? 1 : 0,
      sku.lastSequence,
      replace ? 1 : 0,
      replace?.expectedSequence ?? 0,
    ];
    // The admission settings ride along, so a rebuild brings back the waiting room, the
    // qualification hook and the SKU's own rate limit with the stock.
    const admission = admissionHashFields(admissionFromRow(sku));
    args.push(admission.length / 2, ...admission, sku.admissionVersion, holders.length);
    for (const h of holders) args.push(h.user_id, h.held);
    for (const o of reservations) {
      args.push(o.id, o.userId, o.quantity, o.createdAt.getTime(), o.expiresAt.getTime());
    }
    const reply = await this.redis.fsLoad(keys.length, ...keys, ...args);
    return Number(reply[0]) === ScriptCode.Done;
  }

  /**
   * After Redis lost a SKU: puts back what Redis remembers beyond the SKU's live state, from
   * PostgreSQL. The idempotency claims of its recent orders (so a retry replays its order
   * instead of buying again) and its ended and confirmed orders still inside the retention
   * window (so a replay, cancel or confirm finds them). Runs before the state is loaded, so
   * no purchase of this SKU can race it; a claim made meanwhile points at an order that
   * does not exist and is overwritten. A purchase that read or made such a placeholder just
   * before it was overwritten finds the restored order id in `restoredClaims` (in the SKU's
   * slot, where its script runs) and replays that order instead of buying again.
   */
  private async restoreMemory(skuId: string): Promise<void> {
    const k = this.keys.forSku(skuId);
    const now = Date.now();
    const claimMs = this.opts.idempotencyTtlSeconds * 1000;
    const keepMs = this.opts.orderRetentionSeconds * 1000;
    const rows = await this.db.order.findMany({
      where: { skuId, updatedAt: { gte: new Date(now - keepMs) } },
    });
    const writes: Promise<unknown>[] = [];
    const flush = async () => {
      await Promise.all(writes);
      writes.length = 0;
    };
    let restoredLeftS = 0;
    for (const o of rows) {
      // The claim's end in Redis's time (createdAt came from Redis's clock), shared by the
      // claim and its entry in the hash, which lives as long as its youngest claim.
      const claimEnd = o.createdAt.getTime() + claimMs;
      const claimLeftS = Math.ceil((claimEnd - now) / 1000);
      if (claimLeftS > 0) {
        const claimKey = this.keys.idempotencyClaim(o.userId, o.idempotencyKey);
        restoredLeftS = Math.max(restoredLeftS, claimLeftS);
        writes.push(
          this.redis.hset(k.restoredClaims, claimKey, `${o.id}|${claimEnd}`),
          this.redis.set(
            claimKey,
            claimValue({ sku: skuId, quantity: o.quantity, orderId: o.id }),
            'PXAT',
            claimEnd,
          ),
        );
      }
      if (o.status !== 'reserved') {
        writes.push(
          this.redis.set(
            k.order(o.id),
            orderValue({
              user: o.userId,
              sku: skuId,
              quantity: o.quantity,
              status: o.status,
              createdAt: o.createdAt.getTime(),
              expiresAt: o.expiresAt.getTime(),
            }),
            'EX',
            Math.max(1, Math.ceil((o.updatedAt.getTime() + keepMs - now) / 1000)),
          ),
        );
      }
      if (writes.length >= 1000) await flush();
    }
    await flush();
    if (restoredLeftS > 0) await this.redis.expire(k.restoredClaims, restoredLeftS);
  }

  /** One rebuild of a SKU at a time, across instances: the lazy rebuild and the repair. */
  private rebuildLock(skuId: string): string {
    return this.keys.lock(this.keys.partitionOf(skuId), `rebuild:${skuId}`);
  }

  /** The catalog epoch Redis holds, set to a fresh one when it has none (first use, or lost). */
  private async catalogEpoch(): Promise<string> {
    // A plain read in the usual case: a flood of made-up ids must not make writes.
    const key = this.keys.catalogEpoch();
    const held = await this.redis.get(key);
    if (held !== null) return held;
    const fresh = randomUUID();
    return (await this.redis.set(key, fresh, 'NX', 'GET')) ?? fresh;
  }

  /** A SKU was just written to PostgreSQL: no instance may answer 404 for it from memory. */
  async skuCreated(skuId: string): Promise<void> {
    this.unknownSkus.delete(skuId);
    await this.redis.set(this.keys.catalogEpoch(), randomUUID());
  }

  /**
   * No Redis state for a SKU: 404 when PostgreSQL does not know it either (remembered
   * briefly, so a flood of made-up ids cannot reach the database, unless a SKU was created
   * since), otherwise 503 while a rebuild runs.
   */
  async stateMissing(skuId: string): Promise<never> {
    const remembered = this.unknownSkus.get(skuId);
    // Read before PostgreSQL is asked: a creation the query misses changes it afterwards.
    const epoch = await this.catalogEpoch();
    if (!remembered || remembered.until <= Date.now() || remembered.epoch !== epoch) {
      const exists = await this.db.sku.findUnique({ where: { id: skuId }, select: { id: true } });
      if (exists) {
        this.unknownSkus.delete(skuId);
        await this.onStateMissing(skuId);
        throw skuUnavailable();
      }
      if (this.unknownSkus.size >= 10000) this.unknownSkus.clear();
      this.unknownSkus.set(skuId, { until: Date.now() + UNKNOWN_SKU_CACHE_MS, epoch });
    }
    throw new AppError('SKU_NOT_FOUND');
  }

  /**
   * A SKU's Redis state is missing: never treat that as zero or fresh stock. Start one
   * rebuild from PostgreSQL in the background (under a lock, once the pipeline holds no
   * event of the partition); callers answer 503 meanwhile.
   */
  async onStateMissing(skuId: string): Promise<void> {
    if (this.closed || this.rebuilding.has(skuId)) return;
    this.rebuilding.add(skuId);
    const partition = this.keys.partitionOf(skuId);
    const task = this.opts
      .withLock(this.rebuildLock(skuId), async () => {
        if (this.closed || (await this.redis.exists(this.keys.forSku(skuId).sku))) return;
        if (!(await this.opts.waitForPipeline(partition))) return;
        if (this.closed) return;
        await this.restoreMemory(skuId);
        await this.loadFromDb(skuId);
      })
      .catch(() => undefined)
      .finally(() => {
        this.rebuilding.delete(skuId);
        this.background.delete(task);
      });
    this.background.add(task);
  }

  /** Stops starting background work and waits for what is running. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.background);
  }

  /**
   * Admin repair: takes PostgreSQL as the truth for one SKU. Pauses its sales (no script
   * changes a paused SKU, so its sequence stands still), waits until PostgreSQL has applied
   * every event of it (the pause included), then replaces the Redis state in one atomic
   * script that checks the pause and the sequence again, and resumes (unless the SKU was
   * paused before the repair). If PostgreSQL does not catch up in time, or anything fails,
   * nothing is replaced, sales resume as they were, and the caller hears so.
   */
  async repair(skuId: string, waitMs = 30_000): Promise<{ sequence: number; available: number }> {
    const k = this.keys.forSku(skuId);
    const pausedNow = await this.pause(skuId, true);
    try {
      const deadline = Date.now() + waitMs;
      let sequence: number | undefined;
      while (sequence === undefined) {
        const [seq, row] = await Promise.all([
          this.redis.hget(k.sku, 'seq'),
          this.db.sku.findUnique({ where: { id: skuId }, select: { lastSequence: true } }),
        ]);
        if (row !== null && seq !== null && Number(seq) === row.lastSequence)
          sequence = row.lastSequence;
        else if (Date.now() > deadline)
          throw new AppError(
            'REPAIR_FAILED',
            'PostgreSQL has not caught up with this SKU; nothing was rebuilt and sales resumed.',
          );
        else await new Promise((r) => setTimeout(r, 100));
      }
      const expectedSequence = sequence;
      const replaced =
        (await this.opts.withLock(this.rebuildLock(skuId), () =>
          this.loadFromDb(skuId, { expectedSequence }),
        )) === true;
      if (!replaced) throw new AppError('REPAIR_FAILED');
    } finally {
      if (pausedNow) await this.pause(skuId, false).catch(() => undefined);
    }
    this.soldOut.clear(skuId);
    const [seq, available] = await this.redis.hmget(k.sku, 'seq', 'available');
    return { sequence: Number(seq), available: Number(available) };
  }
}
