// Purchases of one SKU that the API has in hand at one moment go to Redis in one call of
// lua/purchase-n.lua, which decides them in order, each as if alone. Half of what a
// purchase costs Redis is the call around it (the EVALSHA, the SKU's read and write, the
// clock): a batch pays that once, which is what lets one SKU, on one Redis node, take more
// purchases a second. A batch is what has arrived by the end of the event loop's turn
// (setImmediate): nothing waits for a batch to fill, so a lone purchase goes as soon as it
// would have alone.
import { AppError } from '../shared/errors.js';
import type { RedisClient } from '../clients/redis.js';
import type { SkuKeys } from '../shared/keys.js';
import { purchaseBatchSize } from '../shared/metrics.js';

/** One purchase as the script takes it. */
export interface BatchedPurchase {
  k: SkuKeys;
  skuId: string;
  userId: string;
  quantity: number;
  idempotencyKey: string;
  /** The order id: fresh in claim mode (the script may continue another), else the claimed one. */
  orderId: string;
  claimKey: string;
  buyerRateKey: string;
  clientRateKey: string;
  passes: string;
  /** Counted against the rate limits by an earlier call of the same request. */
  limitsTaken: boolean;
  traceparent: string;
}

interface Pending {
  claimHere: boolean;
  items: BatchedPurchase[];
  settle: { resolve: (reply: unknown[]) => void; reject: (err: unknown) => void }[];
}

export interface PurchaseBatchOptions {
  /** Most purchases in one call (1: each purchase alone). */
  maxBatch: number;
  idempotencyTtlSeconds: number;
  /** The deployment's rate limits as the script takes them ('' when none is on). */
  limits: string;
}

export class PurchaseBatches {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: PurchaseBatchOptions,
  ) {}

  /**
   * The script's reply for this purchase: claimHere makes its Idempotency-Key claim in the
   * call (one round trip; a single Redis node only), else the caller has claimed.
   */
  decide(p: BatchedPurchase, claimHere: boolean): Promise<unknown[]> {
    const id = `${claimHere ? 'c' : 'p'}${p.skuId}`;
    let batch = this.pending.get(id);
    if (!batch) {
      batch = { claimHere, items: [], settle: [] };
      this.pending.set(id, batch);
      const queued = batch;
      setImmediate(() => {
        if (this.pending.get(id) === queued) this.send(id, queued);
      });
    }
    const reply = new Promise<unknown[]>((resolve, reject) =>
      batch.settle.push({ resolve, reject }),
    );
    batch.items.push(p);
    if (batch.items.length >= this.opts.maxBatch) this.send(id, batch);
    return reply;
  }

  private send(id: string, batch: Pending): void {
    this.pending.delete(id);
    purchaseBatchSize.observe(batch.items.length);
    this.call(batch).then(
      (replies) => {
        batch.settle.forEach((s, i) => {
          const reply = replies[i];
          if (Array.isArray(reply)) s.resolve(reply);
          else s.reject(new AppError('INTERNAL', `purchase script answered no reply ${i}`));
        });
      },
      (err: unknown) => batch.settle.forEach((s) => s.reject(err)),
    );
  }

  private async call(batch: Pending): Promise<unknown[]> {
    const first = batch.items[0]!;
    const k = first.k;
    const keys: string[] = [k.sku, k.users, k.expiries, k.events, k.restoredClaims];
    const argv: (string | number)[] = [
      first.skuId,
      batch.claimHere ? this.opts.idempotencyTtlSeconds : '',
      this.opts.limits,
    ];
    for (const p of batch.items) {
      keys.push(k.order(p.orderId), p.buyerRateKey, p.clientRateKey);
      if (batch.claimHere) keys.push(p.claimKey);
      argv.push(
        p.userId,
        p.quantity,
        p.orderId,
        p.idempotencyKey,
        // What the caller vouches for: its passes, and '-' when the limits counted it.
        p.limitsTaken ? `${p.passes}-` : p.passes,
        p.traceparent,
      );
      // The claim's name, a field of the restored claims' hash: in claim mode it is the key.
      if (!batch.claimHere) argv.push(p.claimKey);
    }
    const reply = await this.redis.fsPurchase(keys.length, ...keys, ...argv);
    // A call of one purchase answers its reply alone (no table around it to build).
    if (batch.items.length === 1) return [reply];
    return Array.isArray(reply) ? reply : [];
  }
}
