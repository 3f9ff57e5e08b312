// The inventory: every operation that reads or changes stock, as calls of the atomic Lua
// scripts. One facade over its parts, each in its own file: the purchase path
// (purchase.ts), the order lifecycle (orders.ts), SKUs (skus.ts), and the copies of
// PostgreSQL's record into Redis (rebuild.ts). PostgreSQL is read only to create SKUs, to
// rebuild a SKU whose Redis state is missing, and to find orders Redis no longer keeps.
import type { Db } from '../clients/db.js';
import type { RedisClient } from '../clients/redis.js';
import type { KeySpace } from '../shared/keys.js';
import { Orders } from './orders.js';
import { Purchases } from './purchase.js';
import { Rebuilder } from './rebuild.js';
import { Skus } from './skus.js';
import type { AdmissionSettings } from './admission-fields.js';
import {
  SoldOutCache,
  type InventoryContext,
  type InventoryOptions,
  type PurchaseContext,
  type NewSku,
} from './types.js';

export type {
  InventoryOptions,
  NewSku,
  Order,
  OrderStatus,
  PurchaseContext,
  SkuView,
} from './types.js';

export class Inventory {
  private readonly purchases: Purchases;
  private readonly orders: Orders;
  private readonly skus: Skus;
  private readonly rebuild: Rebuilder;

  constructor(
    redis: RedisClient,
    db: Db,
    readonly keys: KeySpace,
    opts: InventoryOptions,
  ) {
    if (opts.orderRetentionSeconds <= opts.idempotencyTtlSeconds) {
      throw new RangeError('orderRetentionSeconds must exceed idempotencyTtlSeconds');
    }
    const ctx: InventoryContext = {
      redis,
      db,
      keys,
      opts,
      soldOut: new SoldOutCache(opts.soldOutCacheMs),
    };
    this.rebuild = new Rebuilder(ctx, (sku, paused) => this.skus.setPaused(sku, paused));
    this.purchases = new Purchases(ctx, this.rebuild);
    this.orders = new Orders(ctx, this.rebuild);
    this.skus = new Skus(ctx, this.rebuild);
  }

  purchase(
    userId: string,
    skuId: string,
    quantity: number,
    idempotencyKey: string,
    context: PurchaseContext = {},
  ) {
    return this.purchases.purchase(userId, skuId, quantity, idempotencyKey, context);
  }

  cancel(userId: string, orderId: string) {
    return this.orders.cancel(userId, orderId);
  }

  /** Confirms a reservation; userId undefined means an admin (payment service) confirms. */
  confirm(userId: string | undefined, orderId: string) {
    return this.orders.confirm(userId, orderId);
  }

  /**
   * Expires one due reservation: 'expired', 'dropped' (ended already), 'kept' (not now) or
   * 'broken' (a key holds the wrong type or a malformed order).
   */
  expire(skuId: string, orderId: string) {
    return this.orders.expire(skuId, orderId);
  }

  /** Expires due reservations of one partition in one script call (the sweeper). */
  expireMany(partition: number, due: readonly { sku: string; orderId: string }[]) {
    return this.orders.expireMany(partition, due);
  }

  /** Reads an order: its owner, or anyone when userId is undefined (admin). */
  getOrder(userId: string | undefined, orderId: string) {
    return this.orders.getOrder(userId, orderId);
  }

  getSku(skuId: string) {
    return this.skus.getSku(skuId);
  }

  createSku(input: NewSku) {
    return this.skus.createSku(input);
  }

  restock(skuId: string, quantity: number, reason: string) {
    return this.skus.restock(skuId, quantity, reason);
  }

  setPaused(skuId: string, paused: boolean) {
    return this.skus.setPaused(skuId, paused);
  }

  /** A SKU's admission settings, from PostgreSQL. */
  getAdmission(skuId: string) {
    return this.skus.getAdmission(skuId);
  }

  /** Replaces a SKU's admission settings: PostgreSQL, then its Redis hash. */
  setAdmission(skuId: string, settings: AdmissionSettings) {
    return this.skus.setAdmission(skuId, settings);
  }

  /**
   * A script found no Redis state for the SKU: 404 when PostgreSQL does not know it,
   * otherwise a rebuild starts and the caller answers 503 (the waiting room's scripts).
   */
  skuStateMissing(skuId: string): Promise<never> {
    return this.rebuild.stateMissing(skuId);
  }

  repair(skuId: string, waitMs?: number) {
    return this.rebuild.repair(skuId, waitMs);
  }

  /** Stops starting background work and waits for what is running. */
  close() {
    return this.rebuild.close();
  }
}
