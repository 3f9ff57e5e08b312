// The inventory: every operation that reads or changes stock, as calls of the atomic Lua
// scripts. PostgreSQL is read only to create SKUs, to rebuild a SKU whose Redis state is
// missing, and to find orders Redis no longer keeps.
import type { Db } from '../db/client.js';
import { Prisma } from '../db/client.js';
import { AppError } from '../errors.js';
import type { RedisClient } from '../redis/client.js';
import type { KeySpace } from './keys.js';
import { REBUILD_RETRY_AFTER_S, ScriptCode, scriptError } from './script-codes.js';

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
}

export interface NewSku {
  sku: string;
  name: string;
  stock: number;
  perUserLimit: number;
  startsAt?: Date | undefined;
  endsAt?: Date | undefined;
  reservationTtlSeconds?: number | undefined;
}

export interface InventoryOptions {
  idempotencyTtlSeconds: number;
  /** How long Redis keeps an ended order; must exceed idempotencyTtlSeconds. */
  orderRetentionSeconds: number;
  soldOutCacheMs: number;
  defaultReservationTtlSeconds: number;
  /**
   * Whether a SKU of this partition may be rebuilt from PostgreSQL now: only when no event
   * of it is still on its way there, or the rebuilt state would be behind.
   */
  canRebuild: (partition: number) => Promise<boolean>;
  /** Serialises rebuilds of one SKU across instances. */
  withLock: <T>(resource: string, fn: () => Promise<T>) => Promise<T | undefined>;
}

const UNKNOWN_SKU_CACHE_MS = 1000;

const iso = (ms: number | string) => new Date(Number(ms)).toISOString();

export class Inventory {
  /** SKU id -> time until which it is known to be sold out (the fast path). */
  private readonly soldOutUntil = new Map<string, number>();
  private readonly rebuilding = new Set<string>();
  private readonly background = new Set<Promise<unknown>>();
  private closed = false;
  /** SKU id -> time until which PostgreSQL is taken not to know it. */
  private readonly unknownSkus = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly db: Db,
    readonly keys: KeySpace,
    private readonly opts: InventoryOptions,
  ) {
    if (opts.orderRetentionSeconds <= opts.idempotencyTtlSeconds) {
      throw new RangeError('orderRetentionSeconds must exceed idempotencyTtlSeconds');
    }
  }

  async purchase(
    userId: string,
    skuId: string,
    quantity: number,
    idempotencyKey: string,
  ): Promise<{ order: Order; replayed: boolean }> {
    const k = this.keys.forSku(skuId);
    const claimKey = this.keys.idempotencyClaim(userId, idempotencyKey);
    let orderId: string;

    const soldOut = (this.soldOutUntil.get(skuId) ?? 0) > Date.now();
    if (soldOut) {
      // Sold out: skip the script and every write. Only a key used before can still
      // succeed (as a replay of its original order), so read its claim and nothing else.
      const claim = await this.redis.get(claimKey);
      if (claim === null) throw new AppError('SOLD_OUT', undefined, { available: 0 });
      orderId = this.matchClaim(claim, skuId, quantity);
    } else {
      const fresh = this.keys.orderIdFor(k.partition);
      const claim = await this.redis.set(
        claimKey,
        `${skuId}|${quantity}|${fresh}`,
        'EX',
        this.opts.idempotencyTtlSeconds,
        'NX',
        'GET',
      );
      orderId = claim === null ? fresh : this.matchClaim(claim, skuId, quantity);
    }

    const reply = await this.redis.fsPurchase(
      k.sku,
      k.users,
      k.order(orderId),
      k.expiries,
      k.events,
      skuId,
      userId,
      quantity,
      orderId,
      idempotencyKey,
    );
    const code = Number(reply[0]);
    if (code === 1) {
      const [, createdAt, expiresAt, available] = reply.map(Number);
      if (available === 0) this.markSoldOut(skuId);
      return {
        order: {
          orderId,
          sku: skuId,
          userId,
          quantity,
          status: 'reserved',
          createdAt: iso(createdAt!),
          expiresAt: iso(expiresAt!),
        },
        replayed: false,
      };
    }
    if (code === 2) {
      return {
        order: {
          orderId,
          sku: skuId,
          userId,
          quantity: Number(reply[4]),
          status: String(reply[1]) as OrderStatus,
          createdAt: iso(Number(reply[2])),
          expiresAt: iso(Number(reply[3])),
        },
        replayed: true,
      };
    }
    if (code === ScriptCode.SoldOut && Number(reply[1]) === 0) this.markSoldOut(skuId);
    if (code === ScriptCode.SkuStateMissing) return this.stateMissing(skuId);
    throw scriptError(code, reply);
  }

  private matchClaim(claim: string, skuId: string, quantity: number): string {
    const [claimedSku, claimedQty, claimedOrder] = claim.split('|');
    if (claimedSku !== skuId || Number(claimedQty) !== quantity || !claimedOrder) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED');
    }
    return claimedOrder;
  }

  private markSoldOut(skuId: string): void {
    if (this.opts.soldOutCacheMs > 0)
      this.soldOutUntil.set(skuId, Date.now() + this.opts.soldOutCacheMs);
  }

  /** Units came back through this instance: no need to wait for the flag to lapse. */
  private clearSoldOut(skuId: string): void {
    this.soldOutUntil.delete(skuId);
  }

  async cancel(userId: string, orderId: string): Promise<Order> {
    return this.release(orderId, 'cancel', userId);
  }

  /** Expires one due reservation (the sweeper); false when it was not due or already ended. */
  async expire(skuId: string, orderId: string): Promise<boolean> {
    const k = this.keys.forSku(skuId);
    const reply = await this.redis.fsRelease(
      k.sku,
      k.users,
      k.order(orderId),
      k.expiries,
      k.events,
      skuId,
      orderId,
      'expire',
      '',
      this.opts.orderRetentionSeconds,
    );
    if (Number(reply[0]) === 1) {
      this.clearSoldOut(skuId);
      return true;
    }
    return false;
  }

  private async release(orderId: string, mode: 'cancel', userId: string): Promise<Order> {
    const located = await this.locate(orderId);
    if (!located) return this.endedOrderFromDb(orderId, userId, 'cancelled', 'cancel');
    const k = this.keys.forSku(located.sku);
    const reply = await this.redis.fsRelease(
      k.sku,
      k.users,
      k.order(orderId),
      k.expiries,
      k.events,
      located.sku,
      orderId,
      mode,
      userId,
      this.opts.orderRetentionSeconds,
    );
    const code = Number(reply[0]);
    if (code === 1 || code === 2) {
      if (code === 1) this.clearSoldOut(located.sku);
      return this.orderFromReply(orderId, located.sku, reply);
    }
    if (code === ScriptCode.SkuStateMissing) await this.onStateMissing(located.sku);
    throw scriptError(code, reply, 'cancel');
  }

  /** Confirms a reservation; userId undefined means an admin (payment service) confirms. */
  async confirm(userId: string | undefined, orderId: string): Promise<Order> {
    const located = await this.locate(orderId);
    if (!located) return this.endedOrderFromDb(orderId, userId, 'confirmed', 'confirm');
    const k = this.keys.forSku(located.sku);
    const reply = await this.redis.fsConfirm(
      k.sku,
      k.order(orderId),
      k.expiries,
      k.events,
      located.sku,
      orderId,
      userId ?? '',
    );
    const code = Number(reply[0]);
    if (code === 1 || code === 2) return this.orderFromReply(orderId, located.sku, reply);
    if (code === ScriptCode.SkuStateMissing) await this.onStateMissing(located.sku);
    throw scriptError(code, reply, 'confirm');
  }

  private orderFromReply(orderId: string, sku: string, reply: unknown[]): Order {
    return {
      orderId,
      sku,
      userId: String(reply[5]),
      quantity: Number(reply[2]),
      status: String(reply[1]) as OrderStatus,
      createdAt: iso(Number(reply[3])),
      expiresAt: iso(Number(reply[4])),
    };
  }

  /** Finds an order's SKU in Redis from the partition its id names. */
  private async locate(orderId: string): Promise<{ sku: string } | undefined> {
    const partition = this.keys.partitionOfOrder(orderId);
    if (partition === undefined) throw new AppError('ORDER_NOT_FOUND');
    const sku = await this.redis.hget(this.keys.order(partition, orderId), 'sku');
    return sku === null ? undefined : { sku };
  }

  /**
   * Redis no longer holds the order (ended long ago, or Redis lost it): PostgreSQL knows.
   * Repeating the call that ended it answers the order; anything else cannot proceed here.
   */
  private async endedOrderFromDb(
    orderId: string,
    userId: string | undefined,
    sameAs: OrderStatus,
    action: 'cancel' | 'confirm',
  ): Promise<Order> {
    const order = await this.orderFromDb(orderId, userId);
    if (order.status === sameAs) return order;
    if (order.status === 'reserved' || order.status === 'confirmed') {
      // Live in PostgreSQL but missing from Redis: Redis lost it; the SKU must be rebuilt.
      await this.onStateMissing(order.sku);
      throw new AppError('SKU_UNAVAILABLE', undefined, undefined, {
        'Retry-After': String(REBUILD_RETRY_AFTER_S),
      });
    }
    if (action === 'cancel')
      throw new AppError(
        'ORDER_NOT_CANCELLABLE',
        `An order in status ${order.status} cannot be cancelled.`,
      );
    if (order.status === 'expired') throw new AppError('ORDER_EXPIRED');
    throw new AppError(
      'ORDER_NOT_CONFIRMABLE',
      `An order in status ${order.status} cannot be confirmed.`,
    );
  }

  private async orderFromDb(orderId: string, userId: string | undefined): Promise<Order> {
    const row = await this.db.order.findUnique({ where: { id: orderId } });
    if (!row || (userId !== undefined && row.userId !== userId))
      throw new AppError('ORDER_NOT_FOUND');
    return {
      orderId: row.id,
      sku: row.skuId,
      userId: row.userId,
      quantity: row.quantity,
      status: row.status,
      createdAt: row.createdAt.toISOString(),
      expiresAt: row.expiresAt.toISOString(),
    };
  }

  /** Reads an order: its owner, or anyone when userId is undefined (admin). */
  async getOrder(userId: string | undefined, orderId: string): Promise<Order> {
    const partition = this.keys.partitionOfOrder(orderId);
    if (partition === undefined) throw new AppError('ORDER_NOT_FOUND');
    const h = await this.redis.hgetall(this.keys.order(partition, orderId));
    if (!h.user || !h.sku) return this.orderFromDb(orderId, userId);
    if (userId !== undefined && h.user !== userId) throw new AppError('ORDER_NOT_FOUND');
    return {
      orderId,
      sku: h.sku,
      userId: h.user,
      quantity: Number(h.quantity),
      status: h.status as OrderStatus,
      createdAt: iso(h.createdAt ?? 0),
      expiresAt: iso(h.expiresAt ?? 0),
    };
  }

  async getSku(skuId: string): Promise<SkuView> {
    const k = this.keys.forSku(skuId);
    const [available, startsAt, endsAt, paused] = await this.redis.hmget(
      k.sku,
      'available',
      'startsAt',
      'endsAt',
      'paused',
    );
    if (available === null || available === undefined) {
      const exists = await this.db.sku.findUnique({ where: { id: skuId }, select: { id: true } });
      if (!exists) throw new AppError('SKU_NOT_FOUND');
      await this.onStateMissing(skuId);
      throw new AppError('SKU_UNAVAILABLE', undefined, undefined, {
        'Retry-After': String(REBUILD_RETRY_AFTER_S),
      });
    }
    const now = Date.now();
    const start = Number(startsAt ?? 0);
    const end = Number(endsAt ?? 0);
    const units = Number(available);
    const status: SkuView['status'] =
      paused === '1'
        ? 'paused'
        : start > 0 && now < start
          ? 'scheduled'
          : end > 0 && now >= end
            ? 'ended'
            : units === 0
              ? 'sold_out'
              : 'active';
    return {
      sku: skuId,
      available: units,
      status,
      startsAt: start ? iso(start) : null,
      endsAt: end ? iso(end) : null,
    };
  }

  /** Admin: PostgreSQL first (the durable record), then the Redis state from it. */
  async createSku(input: NewSku) {
    this.keys.forSku(input.sku);
    try {
      this.unknownSkus.delete(input.sku);
      const row = await this.db.sku.create({
        data: {
          id: input.sku,
          name: input.name,
          totalSupplied: input.stock,
          available: input.stock,
          perUserLimit: input.perUserLimit,
          startsAt: input.startsAt ?? null,
          endsAt: input.endsAt ?? null,
          reservationTtlSeconds:
            input.reservationTtlSeconds ?? this.opts.defaultReservationTtlSeconds,
        },
      });
      await this.loadFromDb(input.sku);
      return row;
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002')
        throw new AppError('SKU_EXISTS');
      throw err;
    }
  }

  async restock(skuId: string, quantity: number, reason: string) {
    const k = this.keys.forSku(skuId);
    const reply = await this.redis.fsRestock(k.sku, k.events, skuId, quantity, reason);
    const code = Number(reply[0]);
    if (code === 1) {
      this.clearSoldOut(skuId);
      return {
        sku: skuId,
        available: Number(reply[1]),
        totalSupplied: Number(reply[2]),
        sequence: Number(reply[3]),
      };
    }
    if (code === ScriptCode.SkuStateMissing) return this.stateMissing(skuId);
    throw scriptError(code, reply);
  }

  async setPaused(skuId: string, paused: boolean): Promise<void> {
    const k = this.keys.forSku(skuId);
    const reply = await this.redis.fsSetPaused(k.sku, k.events, skuId, paused ? '1' : '0');
    const code = Number(reply[0]);
    if (code < 0) throw scriptError(code, reply);
  }

  /**
   * Copies a SKU's state from PostgreSQL into Redis: the SKU, the units each user holds
   * and the live orders. Refused by the script when a state is present. Returns whether
   * it loaded.
   */
  async loadFromDb(skuId: string): Promise<boolean> {
    const k = this.keys.forSku(skuId);
    const sku = await this.db.sku.findUnique({ where: { id: skuId } });
    if (!sku) throw new AppError('SKU_NOT_FOUND');
    const live = await this.db.order.findMany({
      where: { skuId, status: { in: ['reserved', 'confirmed'] } },
      orderBy: { createdAt: 'asc' },
    });
    const keys = [k.sku, k.users, k.expiries, ...live.map((o) => k.order(o.id))];
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
    ];
    for (const o of live) {
      args.push(
        o.id,
        o.userId,
        o.quantity,
        o.status,
        o.createdAt.getTime(),
        o.expiresAt.getTime(),
        o.idempotencyKey,
      );
    }
    const reply = await this.redis.fsLoad(keys.length, ...keys, ...args);
    return Number(reply[0]) === 1;
  }

  /**
   * No Redis state for a SKU: 404 when PostgreSQL does not know it either (remembered
   * briefly, so a flood of made-up ids cannot reach the database), otherwise 503 while
   * a rebuild runs.
   */
  private async stateMissing(skuId: string): Promise<never> {
    const now = Date.now();
    let unknownUntil = this.unknownSkus.get(skuId) ?? 0;
    if (unknownUntil <= now) {
      const exists = await this.db.sku.findUnique({ where: { id: skuId }, select: { id: true } });
      if (exists) {
        this.unknownSkus.delete(skuId);
        await this.onStateMissing(skuId);
        throw new AppError('SKU_UNAVAILABLE', undefined, undefined, {
          'Retry-After': String(REBUILD_RETRY_AFTER_S),
        });
      }
      if (this.unknownSkus.size >= 10000) this.unknownSkus.clear();
      unknownUntil = now + UNKNOWN_SKU_CACHE_MS;
      this.unknownSkus.set(skuId, unknownUntil);
    }
    throw new AppError('SKU_NOT_FOUND');
  }

  /**
   * A SKU's Redis state is missing: never treat that as zero or fresh stock. Start one
   * rebuild from PostgreSQL in the background (under a lock, once the pipeline holds no
   * event of the partition); callers answer 503 meanwhile.
   */
  private async onStateMissing(skuId: string): Promise<void> {
    if (this.closed || this.rebuilding.has(skuId)) return;
    this.rebuilding.add(skuId);
    const partition = this.keys.partitionOf(skuId);
    const task = this.opts
      .withLock(`fs:{p${String(partition).padStart(2, '0')}}:lock:rebuild:${skuId}`, async () => {
        if (this.closed || (await this.redis.exists(this.keys.forSku(skuId).sku))) return;
        if (!(await this.opts.canRebuild(partition))) return;
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
   * Admin repair: takes PostgreSQL as the truth for one SKU. Pauses its sales, waits until
   * PostgreSQL has applied every event of it (the pause included), rebuilds the Redis state
   * from PostgreSQL under the rebuild lock, and resumes. If PostgreSQL does not catch up in
   * time nothing is rebuilt, sales resume as they were, and the caller hears so.
   */
  async repair(skuId: string, waitMs = 30_000): Promise<{ sequence: number; available: number }> {
    const k = this.keys.forSku(skuId);
    await this.setPaused(skuId, true);
    const drained = async () => {
      const [seq, row] = await Promise.all([
        this.redis.hget(k.sku, 'seq'),
        this.db.sku.findUnique({ where: { id: skuId }, select: { lastSequence: true } }),
      ]);
      return row !== null && seq !== null && Number(seq) === row.lastSequence;
    };
    const deadline = Date.now() + waitMs;
    while (!(await drained())) {
      if (Date.now() > deadline) {
        await this.setPaused(skuId, false);
        throw new AppError(
          'REPAIR_FAILED',
          'PostgreSQL has not caught up with this SKU; nothing was rebuilt and sales resumed.',
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const partition = k.partition;
    const rebuilt = await this.opts.withLock(
      `fs:{p${String(partition).padStart(2, '0')}}:lock:rebuild:${skuId}`,
      async () => {
        const mine = (await this.redis.zrange(k.expiries, '0', '-1')).filter((m) =>
          m.startsWith(`${skuId}:`),
        );
        await this.redis.del(k.sku, k.users);
        if (mine.length) await this.redis.zrem(k.expiries, ...mine);
        return this.loadFromDb(skuId);
      },
    );
    if (!rebuilt) {
      await this.setPaused(skuId, false).catch(() => undefined);
      throw new AppError('REPAIR_FAILED');
    }
    await this.setPaused(skuId, false);
    this.clearSoldOut(skuId);
    const [seq, available] = await this.redis.hmget(k.sku, 'seq', 'available');
    return { sequence: Number(seq), available: Number(available) };
  }
}
