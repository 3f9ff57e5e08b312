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
import type { InventoryOptions } from './types.js';

/** One purchase request, as the script takes it. */
export interface PurchaseRequest {
  k: SkuKeys;
  skuId: string;
  userId: string;
  quantity: number;
  idempotencyKey: string;
  claimKey: string;
  buyerRateKey: string;
  clientRateKey: string;
  passes: string;
  /** Set for a second script call of the same request: the limits counted it once. */
  limitsTaken?: boolean;
  /** The Redis span's W3C traceparent, when tracing is on and the trace sampled. */
  traceparent?: string;
}

/** A purchase waiting for its call, with the order id it is decided for and its answer. */
interface Queued {
  r: PurchaseRequest;
  /** Fresh in claim mode (the script may continue the key's own), else the claimed one. */
  orderId: string;
  resolve: (reply: unknown[]) => void;
  reject: (err: unknown) => void;
}

interface Pending {
  claimHere: boolean;
  queued: Queued[];
}

export class PurchaseBatches {
  private readonly pending = new Map<string, Pending>();

  /** The deployment's limits as the script takes them: '' when none is on. */
  private readonly limits: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: InventoryOptions,
  ) {
    const o = opts;
    this.limits =
      o.buyerRatePerSecond <= 0 && o.clientRatePerSecond <= 0
        ? ''
        : `${o.buyerRatePerSecond}|${o.buyerBurst}|${o.clientRatePerSecond}|${o.clientBurst}`;
  }

  /**
   * The script's reply for this purchase: claimHere makes its Idempotency-Key claim in the
   * call (one round trip; a single Redis node only), else the caller has claimed.
   */
  decide(r: PurchaseRequest, orderId: string, claimHere: boolean): Promise<unknown[]> {
    const id = `${claimHere ? 'c' : 'p'}${r.skuId}`;
    let batch = this.pending.get(id);
    if (!batch) {
      const created: Pending = { claimHere, queued: [] };
      this.pending.set(id, created);
      setImmediate(() => {
        if (this.pending.get(id) === created) this.send(id, created);
      });
      batch = created;
    }
    const queued = batch.queued;
    const reply = new Promise<unknown[]>((resolve, reject) =>
      queued.push({ r, orderId, resolve, reject }),
    );
    if (queued.length >= this.opts.purchaseBatchMax) this.send(id, batch);
    return reply;
  }

  private send(id: string, batch: Pending): void {
    this.pending.delete(id);
    purchaseBatchSize.observe(batch.queued.length);
    this.call(batch).then(
      (replies) =>
        batch.queued.forEach((q, i) => {
          const reply = replies[i];
          if (Array.isArray(reply)) q.resolve(reply);
          else q.reject(new AppError('INTERNAL', `purchase script answered no reply ${i}`));
        }),
      (err: unknown) => batch.queued.forEach((q) => q.reject(err)),
    );
  }

  private async call(batch: Pending): Promise<unknown[]> {
    const { k, skuId } = batch.queued[0]!.r;
    const keys: string[] = [k.sku, k.users, k.expiries, k.events, k.restoredClaims];
    const argv: (string | number)[] = [
      skuId,
      batch.claimHere ? this.opts.idempotencyTtlSeconds : '',
      this.limits,
    ];
    for (const { r, orderId } of batch.queued) {
      keys.push(k.order(orderId), r.buyerRateKey, r.clientRateKey);
      if (batch.claimHere) keys.push(r.claimKey);
      argv.push(
        r.userId,
        r.quantity,
        orderId,
        r.idempotencyKey,
        // What the caller vouches for: its passes, and '-' when the limits counted it.
        r.limitsTaken ? `${r.passes}-` : r.passes,
        r.traceparent ?? '',
      );
      // The claim's name, a field of the restored claims' hash: in claim mode it is the key.
      if (!batch.claimHere) argv.push(r.claimKey);
    }
    const reply = await this.redis.fsPurchase(keys.length, ...keys, ...argv);
    // A call of one purchase answers its reply alone (no table around it to build).
    if (batch.queued.length === 1) return [reply];
    return Array.isArray(reply) ? reply : [];
  }
}
