// What the inventory's parts share: the shapes they answer with, their options, and the
// per-process "sold out" memory that lets the purchase path skip Redis for a sold-out SKU.
import type { Db } from '../clients/db.js';
import type { RedisClient } from '../clients/redis.js';
import type { KeySpace } from '../shared/keys.js';
import type { AdmissionInput } from './admission-fields.js';

/**
 * Total units a SKU may ever be supplied (initial stock plus restocks): well inside
 * PostgreSQL's integer, so no event can carry a total the database cannot store.
 */
export const MAX_SUPPLY = 1_000_000_000;

export type OrderStatus = 'reserved' | 'confirmed' | 'cancelled' | 'expired';

export interface Order {
  orderId: string;
  sku: string;
  userId: string;
  quantity: number;
  status: OrderStatus;
  createdAt: string;
  expiresAt: string;
}

export interface SkuView {
  sku: string;
  available: number;
  status: 'scheduled' | 'active' | 'sold_out' | 'ended' | 'paused';
  startsAt: string | null;
  endsAt: string | null;
  /** Buyers join its waiting room and buy with the Admission-Token it gives them. */
  waitingRoom: boolean;
  /** Joins and purchases need the seller's Qualification-Token. */
  qualificationRequired: boolean;
}

export interface NewSku {
  sku: string;
  name: string;
  stock: number;
  perUserLimit: number;
  startsAt?: Date | undefined;
  endsAt?: Date | undefined;
  reservationTtlSeconds?: number | undefined;
  /** Waiting room, qualification and the SKU's own rate limit (src/inventory/admission-fields.ts). */
  admission?: AdmissionInput | undefined;
}

export interface InventoryOptions {
  idempotencyTtlSeconds: number;
  /** How long Redis keeps an ended order; must exceed idempotencyTtlSeconds. */
  orderRetentionSeconds: number;
  soldOutCacheMs: number;
  defaultReservationTtlSeconds: number;
  /**
   * A new purchase claims its Idempotency-Key in the purchase script itself: one round trip
   * instead of two. Only on a single Redis node: on a cluster the claim (in the user's hash
   * slot) and the SKU's keys (in the partition's) cannot meet in one script.
   */
  claimInScript: boolean;
  /**
   * Most purchases of one SKU decided in one call of the purchase script: those the API has
   * in hand at one moment go together (src/inventory/purchase-batches.ts). 1: each alone.
   */
  purchaseBatchMax: number;
  /**
   * Purchases per second one buyer may send for one SKU, and the burst above it (GCRA, in
   * the purchase script); a SKU may set its own. A rate of 0 is no limit.
   */
  buyerRatePerSecond: number;
  buyerBurst: number;
  /** The same per client address and SKU (0: off). */
  clientRatePerSecond: number;
  clientBurst: number;
  /**
   * Waits until every event the partition had issued so far has reached PostgreSQL (false
   * when that did not happen in time): a SKU is rebuilt from PostgreSQL only then, or the
   * rebuilt state would be behind.
   */
  waitForPipeline: (partition: number) => Promise<boolean>;
  /** Serialises rebuilds of one SKU across instances. */
  withLock: <T>(resource: string, fn: () => Promise<T>) => Promise<T | undefined>;
}

/** What the HTTP layer knows of a purchase request beyond its body. */
export interface PurchaseContext {
  /** Passes the caller verified: 'a' admitted (Admission-Token), 'q' qualified. */
  passes?: string;
  /** The client's address, for the per-address rate limit. */
  clientAddress?: string;
}

export const iso = (ms: number | string) => new Date(Number(ms)).toISOString();

/** SKU id -> time until which it is known to be sold out (the purchase fast path). */
export class SoldOutCache {
  private readonly until = new Map<string, number>();
  constructor(private readonly ms: number) {}

  has(skuId: string): boolean {
    return (this.until.get(skuId) ?? 0) > Date.now();
  }

  mark(skuId: string): void {
    if (this.ms > 0) this.until.set(skuId, Date.now() + this.ms);
  }

  /** Units came back through this instance: no need to wait for the flag to lapse. */
  clear(skuId: string): void {
    this.until.delete(skuId);
  }
}

/** The clients and settings every part of the inventory works with. */
export interface InventoryContext {
  redis: RedisClient;
  db: Db;
  keys: KeySpace;
  opts: InventoryOptions;
  soldOut: SoldOutCache;
}

/** A part of the inventory (purchase path, orders, SKUs, rebuild): what they all hold. */
export abstract class InventoryPart {
  protected readonly redis: RedisClient;
  protected readonly db: Db;
  protected readonly keys: KeySpace;
  protected readonly opts: InventoryOptions;
  protected readonly soldOut: SoldOutCache;

  constructor(ctx: InventoryContext) {
    ({
      redis: this.redis,
      db: this.db,
      keys: this.keys,
      opts: this.opts,
      soldOut: this.soldOut,
    } = ctx);
  }
}
